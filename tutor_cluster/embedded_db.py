"""Embedded SQLite files that several processes on one machine share (gateway replicas, memory actors, the
router, jobs): one way to open them. WAL lets readers go on while one process writes. Opening retries while
another process is switching a new file to WAL: SQLite answers that with "database is locked" at once, without
waiting for its busy timeout (two memory actors starting together on a fresh file hit it)."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal


def connect(path: str | Path, *, timeout_s: float, synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
            schema: Sequence[str] = ()) -> sqlite3.Connection:
    """A WAL-mode connection (autocommit; usable from several threads under the caller's lock; deleted content
    overwritten) with ``schema`` statements applied."""
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(timeout_s, 5.0)
    while True:
        db = sqlite3.connect(file, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten: an erased learner leaves no trace
            for statement in schema:
                db.execute(statement)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.08)


def add_column(db: sqlite3.Connection, table: str, column: str, decl: str) -> None:
    """Add a column a file made by an older version lacks (a replica racing to do the same is fine)."""
    if column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    except sqlite3.OperationalError as exc:
        if "duplicate column name" not in str(exc):
            raise


def truncate_wal(db: sqlite3.Connection) -> bool:
    """Checkpoint and empty the write-ahead log (after an erasure: deleted rows leave the WAL too). False when a
    reader holds an old snapshot; a later checkpoint then finishes the job."""
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:
        return False
    return busy == 0
