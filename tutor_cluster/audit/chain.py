"""Audit records and their hash chain.

Each record carries ``seq`` (1, 2, …), ``prev`` (the previous record's hash; 64 zeros for the first) and
``hash`` = SHA-256 of its canonical JSON without ``hash``. :func:`verify` walks the records in stored order and
names the first one that was edited (its hash no longer matches), removed (a gap in ``seq`` / a ``prev`` that
matches nothing) or moved (``seq`` out of order). Editing the *last* record and recomputing its hash is only
caught against a head hash kept elsewhere (``expect_head``): publish the head ``tutor-cluster audit verify``
prints, and pass it back later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
#: Fields of a record, in the order they are shown; ``hash`` is over all the others.
FIELDS = ("seq", "at", "actor", "role", "tenant", "action", "resource", "subject", "purpose", "route", "prev")


def digest(record: dict[str, Any]) -> str:
    body = {k: record.get(k) for k in FIELDS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def chained(fields: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
    """The next record: ``fields`` (everything but seq, prev, hash) linked after ``prev``."""
    record = {k: fields.get(k) for k in FIELDS if k not in ("seq", "prev")}
    record.update(seq=seq, prev=prev)
    record["hash"] = digest(record)
    return record


@dataclass(frozen=True)
class Problem:
    """The first bad record: its position in storage (1-based), its seq as stored, and what is wrong."""

    position: int
    seq: Any
    reason: str

    def __str__(self) -> str:
        return f"record {self.position} (seq {self.seq}): {self.reason}"


def verify(records: Iterable[dict[str, Any]], *, expect_head: str | None = None,
           start: tuple[int, str] = (0, GENESIS)) -> tuple[Problem | None, str, int]:
    """(the first problem or None, the head hash, how many records were read). ``start``: the seq and hash of the
    last record retention removed (the log's checkpoint), which the first record kept must follow."""
    first, prev = start
    n = 0
    for n, record in enumerate(records, 1):
        seq = first + n
        if record.get("seq") != seq:
            return Problem(n, record.get("seq"), f"expected seq {seq}: a record before it was removed or moved"), prev, n
        if record.get("prev") != prev:
            return Problem(n, seq, "its prev does not match the record before it: removed, moved or edited"), prev, n
        if digest(record) != record.get("hash"):
            return Problem(n, seq, "its content does not match its hash: edited"), prev, n
        prev = record["hash"]
    if expect_head is not None and prev != expect_head:
        return Problem(n, n, f"the head is {prev[:12]}…, not the expected {expect_head[:12]}…: the end was "
                             "edited or cut"), prev, n
    return None, prev, n
