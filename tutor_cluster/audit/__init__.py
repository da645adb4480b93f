"""The disclosure audit trail (FERPA §99.32): an append-only, hash-chained log of every access to a learner's data.

``chain.py`` (records, hashing, verification: pure), ``log.py`` (the SQLite store and what the services call).
"""
