"""Pseudonymous ids: what every tier below the API carries instead of a learner's own id."""

from __future__ import annotations

import hashlib


def pseudonym(tenant: str, learner_id: str) -> str:
    """A stable pseudonymous learner id for ledgers and budget keys (no raw id leaves the gateway)."""
    return hashlib.sha256(f"{tenant}\x00{learner_id}".encode()).hexdigest()[:24]
