"""Who may do what: the role × route table (``rules.py``), the class and guardian relations (``relations.py``)
and the object-level check on learners (``policy.py``)."""
