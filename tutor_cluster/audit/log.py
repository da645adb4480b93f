"""The audit log's store (an SQLite file shared by the gateway replicas of one machine) and the one call the
services make: :meth:`AuditLog.record` for an access to a learner's data.

Appends are serialised by SQLite (``BEGIN IMMEDIATE``: read the head, link, insert, commit — fsync'd), so replicas
in several processes extend one chain. Triggers refuse UPDATE and DELETE; what edits the file behind SQLite's back
is what :func:`tutor_cluster.audit.chain.verify` finds. Retention (``privacy.retention.audit_days``) removes the
oldest records in one transaction and keeps, as the log's checkpoint, the seq and hash of the last one removed:
the chain of what is kept verifies from there. Gateways on several nodes share one log on Redis instead
(``audit/redis_store.py``, ``privacy.audit_redis_url``); :func:`open_audit` picks one from settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from tutor_cluster import embedded_db
from tutor_cluster.audit.chain import GENESIS, chained
from tutor_cluster.audit.redis_store import RedisAuditStore
from tutor_cluster.config.privacy import PrivacyConfig
from tutor_cluster.errors import Unavailable
from tutor_cluster.identity import Principal

_NO_DELETE = ("CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
              "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, tenant TEXT NOT NULL, "
    "subject TEXT, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_subject ON audit (tenant, subject, pos)",
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    _NO_DELETE,
    "CREATE TABLE IF NOT EXISTS audit_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, "
    "hash TEXT NOT NULL, at TEXT NOT NULL, expired INTEGER NOT NULL)",
)
#: Why each role reaches a learner's data (the "purpose" of FERPA §99.32's record).
PURPOSE = {"learner": "own learning", "service": "tutoring", "teacher": "instruction",
           "guardian": "guardian access", "institution_admin": "administration", "platform_admin": "operations",
           "ml_job": "analytics"}


class AuditStore:
    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self._db = embedded_db.connect(path, timeout_s=timeout_s, schema=_SCHEMA)
        self._lock = threading.Lock()

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                head = self._db.execute("SELECT record FROM audit ORDER BY pos DESC LIMIT 1").fetchone()
                last = json.loads(head[0]) if head else None
                record = chained(fields, last["seq"] + 1 if last else 1, last["hash"] if last else GENESIS)
                self._db.execute("INSERT INTO audit (seq, tenant, subject, record) VALUES (?, ?, ?, ?)",
                                 (record["seq"], record["tenant"], record["subject"],
                                  json.dumps(record, sort_keys=True)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return record

    def expire(self, before: str) -> int:
        """Remove the oldest records written before ``before`` (an ISO time) — a prefix of the log, never a record
        after a kept one — keeping the last one's seq and hash as the checkpoint; returns how many. The
        append-only trigger is lifted only inside this transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = None
                for pos, text in self._db.execute("SELECT pos, record FROM audit ORDER BY pos"):
                    record = json.loads(text)
                    if record["at"] >= before:
                        break
                    last = (pos, record)
                if last is None:
                    self._db.execute("ROLLBACK")
                    return 0
                pos, record = last
                (n,) = self._db.execute("SELECT count(*) FROM audit WHERE pos <= ?", (pos,)).fetchone()
                row = self._db.execute("SELECT expired FROM audit_checkpoint WHERE id = 1").fetchone()
                self._db.execute("DROP TRIGGER audit_no_delete")
                self._db.execute("DELETE FROM audit WHERE pos <= ?", (pos,))
                self._db.execute(_NO_DELETE)
                self._db.execute("INSERT OR REPLACE INTO audit_checkpoint (id, seq, hash, at, expired) "
                                 "VALUES (1, ?, ?, ?, ?)",
                                 (record["seq"], record["hash"], record["at"], (row[0] if row else 0) + n))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            embedded_db.truncate_wal(self._db)
        return n

    def about(self, tenant: str, subjects: list[str], limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records about one learner (any of ``subjects``) of one tenant, newest first."""
        marks = ",".join("?" * len(subjects))
        rows = self._db.execute(f"SELECT record FROM audit WHERE tenant = ? AND subject IN ({marks}) "  # noqa: S608
                                "ORDER BY pos DESC LIMIT ?", (tenant, *subjects, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        self._db.close()


def read_checkpoint(path: str | Path) -> tuple[int, str, int] | None:
    """(seq, hash, records expired) of the last record retention removed, or None (nothing removed yet)."""
    db = sqlite3.connect(f"file:{Path(path).expanduser()}?mode=ro", uri=True)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_checkpoint'").fetchone():
            return None
        row = db.execute("SELECT seq, hash, expired FROM audit_checkpoint WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1]), int(row[2])) if row else None
    finally:
        db.close()


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of the log at ``path``, in stored order, opened read-only (verifying writes nothing, not even
    the schema). A row that is not JSON reads as an empty record: verify names it."""
    db = sqlite3.connect(f"file:{Path(path).expanduser()}?mode=ro", uri=True)
    try:
        for (text,) in db.execute("SELECT record FROM audit ORDER BY pos"):
            try:
                yield json.loads(text)
            except ValueError:
                yield {}
    finally:
        db.close()


def open_audit(privacy: PrivacyConfig) -> AuditStore | RedisAuditStore:
    """The region's audit log: Redis when ``privacy.audit_redis_url``, else the SQLite file."""
    if privacy.audit_redis_url:
        return RedisAuditStore(privacy.audit_redis_url, prefix=privacy.audit_redis_prefix)
    return AuditStore(privacy.audit_path())


class AuditLog:
    """What the services call. The learner appears as their keyed pseudonym, never their id."""

    def __init__(self, store: AuditStore | RedisAuditStore) -> None:
        self._store = store

    async def record(self, principal: Principal, subject: str, *, action: str, resource: str,
                     route: str) -> None:
        """One access, written durably (off the event loop) before the caller goes on. A learner reaching their
        own data is recorded as ``self``: their key id (a JWT subject may be their own id) would outlive an
        erasure and link the trail back to them."""
        fields = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                  "actor": "self" if principal.role == "learner" else principal.key_id, "role": principal.role, "tenant": principal.tenant, "action": action,
                  "resource": resource, "subject": subject,
                  "purpose": PURPOSE.get(principal.role, principal.role), "route": route}
        try:
            await asyncio.to_thread(self._store.append, fields)
        except (sqlite3.Error, redis.RedisError) as exc:  # no access goes unrecorded: the request fails instead
            raise Unavailable(f"the audit log cannot be written: {exc}", kind="audit_unavailable",
                              retry_after_s=1) from None

    async def about(self, tenant: str, subjects: list[str], limit: int) -> list[dict[str, Any]]:
        """Records about one learner (known by any of ``subjects``: their pseudonym under each secret version),
        newest first."""
        try:
            return await asyncio.to_thread(self._store.about, tenant, subjects, limit)
        except (sqlite3.Error, redis.RedisError) as exc:
            raise Unavailable(f"the audit log cannot be read: {exc}", kind="audit_unavailable",
                              retry_after_s=1) from None
