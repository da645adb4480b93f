"""The region's vault of personal data: registration records encrypted per learner, envelope-style
(``crypto.py``), in a store of their own (``store.py``). Nothing outside the vault holds a learner's personal
data; everything else carries their keyed pseudonym."""
