"""The vault's store (an SQLite file shared by the gateway replicas of one machine) and what the services call:
register a learner, resolve one (their key material, or None), read their personal data, and erase them
through a durable erasure job.

Deleted rows are overwritten (``secure_delete``) and the write-ahead log is truncated after an erasure, so a
learner's sealed key does not linger in free pages. Several gateway nodes share a vault on Redis instead
(``vault/redis_store.py``, ``privacy.vault_redis_url``); ``vault/backends.py`` picks one from settings.
"""

# size: one store's tables (tenant keys, learners, consents, registrations, erasure jobs) share a connection and lock
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tutor_cluster import embedded_db
from tutor_cluster.errors import Unavailable
from tutor_cluster.privacy import PseudonymKeyError
from tutor_cluster.vault.crypto import KeyEncryptionKeys, VaultCorrupt, context, new_key, seal, unseal

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tenant_keys (tenant TEXT PRIMARY KEY, kek_version TEXT NOT NULL, "
    "wrapped BLOB NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS learners (tenant TEXT NOT NULL, learner_id TEXT NOT NULL, region TEXT NOT NULL, "
    "created_at REAL NOT NULL, erasing INTEGER NOT NULL DEFAULT 0, learner_key BLOB NOT NULL, "
    "profile BLOB NOT NULL, minor_until BLOB NOT NULL, active_at REAL, PRIMARY KEY (tenant, learner_id))",
    # consent history: the latest record per scope is in force
    "CREATE TABLE IF NOT EXISTS consents (tenant TEXT NOT NULL, learner_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "record TEXT NOT NULL, PRIMARY KEY (tenant, learner_id, seq))",
    "CREATE TABLE IF NOT EXISTS registrations (tenant TEXT NOT NULL, request TEXT NOT NULL, "
    "learner_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant, request))",
    "CREATE TABLE IF NOT EXISTS erasures (tenant TEXT NOT NULL, ref TEXT NOT NULL, learner BLOB, "
    "steps TEXT NOT NULL, receipt TEXT NOT NULL, requested_at REAL NOT NULL, completed_at REAL, "
    "claimed_until REAL, PRIMARY KEY (tenant, ref))",
)
#: Prefix of the learner ids registration makes: ``lrn_<home region>_<random>`` (they say nothing about the
#: learner but where their data lives, so any region's gateway knows where to send them).
ID_PREFIX = "lrn_"


def new_learner_id(region: str) -> str:
    return f"{ID_PREFIX}{region}_{base64.b32encode(os.urandom(15)).decode().lower()}"


def home_region(learner_id: str) -> str | None:
    """The home region a registered id names (None: not of the registration's form, or made before regions)."""
    if not learner_id.startswith(ID_PREFIX):
        return None
    region, sep, rest = learner_id[len(ID_PREFIX):].rpartition("_")
    return region if sep and region and rest else None


# --- what both backends seal and open the same way ------------------------------------------------------------
def body_digest(dek: bytes, body: str) -> str:
    """What a registration retry is compared by: the body holds personal data, so only its HMAC is kept."""
    return hmac.new(dek, body.encode(), hashlib.sha256).hexdigest()


def seal_learner(dek: bytes, tenant: str, learner_id: str, profile: dict[str, Any], minor_until: float
                 ) -> dict[str, bytes]:
    """A new learner's sealed columns: their key under the tenant's, their personal data under theirs, and until
    when a guardian must consent (it tells the birth date) under the tenant's."""
    learner_key = new_key()
    return {"learner_key": seal(dek, learner_key, context("learner-key", tenant, learner_id)),
            "profile": seal(learner_key, json.dumps(profile, sort_keys=True).encode(),
                            context("profile", tenant, learner_id)),
            "minor_until": seal(dek, repr(minor_until).encode(), context("minor-until", tenant, learner_id))}


def seal_job(dek: bytes, tenant: str, ref: str, learner_id: str, subject: str) -> bytes:
    return seal(dek, json.dumps({"id": learner_id, "subject": subject}).encode(), context("erasure", tenant, ref))


def open_job(dek: bytes, tenant: str, ref: str, sealed: bytes | None, steps: str, receipt: str, requested: float,
             completed: float | None) -> ErasureJob:
    who = json.loads(unseal(dek, sealed, context("erasure", tenant, ref))) if sealed is not None else {}
    return ErasureJob(tenant, ref, who.get("id"), tuple(json.loads(steps)), json.loads(receipt), requested,
                      completed, who.get("subject"))


@contextlib.contextmanager
def vault_errors() -> Iterator[None]:
    """A vault that cannot be read or written (a locked or missing file, a value that does not open, a KEK version
    this process lacks) is :class:`Unavailable` (503 ``vault_unavailable``), never a 500."""
    try:
        yield
    except (sqlite3.Error, redis.RedisError, VaultCorrupt, PseudonymKeyError) as exc:
        raise Unavailable(f"the vault cannot be used: {type(exc).__name__}: {exc}", kind="vault_unavailable",
                          retry_after_s=2) from None


class RegistrationConflict(ValueError):
    """The idempotency key was used before with another body."""


@dataclass(frozen=True)
class VaultEntry:
    """A registered learner as the services see them: never their personal data — their key material, until
    when a guardian must consent for them, and the consents in force."""

    tenant: str
    learner_id: str
    region: str
    created_at: float
    learner_key: bytes
    erasing: bool
    minor_until: float  # Unix time from which no guardian consent is needed (0: never needed; inf: until told)
    consents: dict[str, bool]  # scope → the latest decision recorded
    active_at: float = 0.0  # the learner's last recorded activity (privacy.retention.vault_days counts from it)


@dataclass(frozen=True)
class ErasureJob:
    tenant: str
    ref: str
    learner_id: str | None  # None once completed: the job keeps no raw id
    steps: tuple[str, ...]
    receipt: dict[str, Any]
    requested_at: float
    completed_at: float | None
    subject: str | None = None  # the learner's pseudonym, for the audit record (sealed with the id, wiped with it)


class Vault:
    """One region's vault. Methods block (SQLite): call them off the event loop — but for the reads
    (``lookup``, ``erasing``, ``profile``), which never wait for a writer (WAL)."""

    remote = False

    def __init__(self, path: str | Path, keks: KeyEncryptionKeys, *, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path).expanduser()
        self._db = embedded_db.connect(self.path, timeout_s=timeout_s, schema=_SCHEMA)
        self._lock = threading.Lock()
        # lookups (one per request) read on their own connection: in WAL mode they never wait for a writer, so
        # the services call them on the event loop
        self._reads = embedded_db.connect(self.path, timeout_s=timeout_s)
        self._read_lock = threading.Lock()
        self._keks = keks
        self._deks: dict[str, bytes] = {}
        self._clock = clock
        for table, column in (("learners", "active_at"), ("erasures", "claimed_until")):  # a vault made before
            embedded_db.add_column(self._db, table, column, "REAL")

    # --- keys -------------------------------------------------------------------------------------------------

    def _data_key(self, tenant: str) -> bytes:
        """The tenant's data key (unwrapped with the KEK; made and stored wrapped on first use). Call inside the
        lock."""
        dek = self._deks.get(tenant)
        if dek is not None:
            return dek
        row = self._db.execute("SELECT kek_version, wrapped FROM tenant_keys WHERE tenant = ?", (tenant,)).fetchone()
        if row is None:
            dek, version = new_key(), self._keks.current
            wrapped = seal(self._keks.key(version), dek, context("tenant-key", tenant))
            self._db.execute("INSERT OR IGNORE INTO tenant_keys (tenant, kek_version, wrapped, created_at) "
                             "VALUES (?, ?, ?, ?)", (tenant, version, wrapped, self._clock()))
            row = self._db.execute("SELECT kek_version, wrapped FROM tenant_keys WHERE tenant = ?",
                                   (tenant,)).fetchone()
        dek = unseal(self._keks.key(row[0]), row[1], context("tenant-key", tenant))
        self._deks[tenant] = dek
        return dek

    def _read_data_key(self, tenant: str) -> bytes:
        """The tenant's data key through the read connection (lookups never take the writer's lock)."""
        with self._read_lock:
            row = self._reads.execute("SELECT kek_version, wrapped FROM tenant_keys WHERE tenant = ?",
                                      (tenant,)).fetchone()
        if row is None:
            raise VaultCorrupt(f"the vault has learners of tenant {tenant!r} but no data key for them")
        dek = unseal(self._keks.key(row[0]), row[1], context("tenant-key", tenant))
        self._deks[tenant] = dek
        return dek

    def rewrap(self) -> int:
        """Re-wrap every tenant data key with the current KEK (after a KEK rotation); returns how many."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT tenant, kek_version, wrapped FROM tenant_keys").fetchall()
                for tenant, version, wrapped in rows:
                    dek = unseal(self._keks.key(version), wrapped, context("tenant-key", tenant))
                    self._db.execute("UPDATE tenant_keys SET kek_version = ?, wrapped = ? WHERE tenant = ?",
                                     (self._keks.current, seal(self._keks.key(), dek,
                                                               context("tenant-key", tenant)), tenant))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    # --- learners ---------------------------------------------------------------------------------------------

    def register(self, tenant: str, region: str, profile: dict[str, Any], *, minor_until: float = 0.0,
                 request: tuple[str, str] | None = None) -> tuple[str, float, bool]:
        """Store a new learner's personal data; returns (learner id, created at, created). ``minor_until``: until
        when a guardian must consent (sealed: it tells the birth date). ``request``: an idempotency key and the
        request body: the same key again returns the same learner (:class:`RegistrationConflict` with another
        body; only an HMAC of the body is stored)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                dek = self._data_key(tenant)
                body = body_digest(dek, request[1]) if request is not None else ""
                if request is not None:
                    seen = self._db.execute(
                        "SELECT r.learner_id, r.body, l.created_at FROM registrations r JOIN learners l "
                        "ON l.tenant = r.tenant AND l.learner_id = r.learner_id "
                        "WHERE r.tenant = ? AND r.request = ?", (tenant, request[0])).fetchone()
                    if seen is not None:
                        self._db.execute("ROLLBACK")
                        if not hmac.compare_digest(seen[1], body):
                            raise RegistrationConflict(request[0])
                        return seen[0], seen[2], False
                learner_id, now = new_learner_id(region), self._clock()
                sealed = seal_learner(dek, tenant, learner_id, profile, minor_until)
                self._db.execute("INSERT INTO learners (tenant, learner_id, region, created_at, learner_key, profile, "
                                 "minor_until, active_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (tenant, learner_id, region, now, sealed["learner_key"], sealed["profile"],
                                  sealed["minor_until"], now))
                if request is not None:
                    self._db.execute("INSERT INTO registrations (tenant, request, learner_id, body) "
                                     "VALUES (?, ?, ?, ?)", (tenant, request[0], learner_id, body))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return learner_id, now, True

    def entry(self, tenant: str, learner_id: str) -> VaultEntry | None:
        """The registered learner's key material and consents, or None when the vault has no such learner."""
        return self.lookup(tenant, learner_id)[0]

    @staticmethod
    def _consents(db: sqlite3.Connection, tenant: str, learner_id: str) -> dict[str, bool]:
        consents: dict[str, bool] = {}
        for (record,) in db.execute("SELECT record FROM consents WHERE tenant = ? AND learner_id = ? ORDER BY seq",
                                    (tenant, learner_id)):
            decision = json.loads(record)
            consents[decision["scope"]] = decision["granted"]
        return consents

    def lookup(self, tenant: str, learner_id: str) -> tuple[VaultEntry | None, dict[str, bool]]:
        """The learner's entry (None: not registered) and the consent decisions in force — recorded for a
        learner with a client-chosen id too (registration 'optional'). Reads only; never waits for a writer."""
        with self._read_lock:
            row = self._reads.execute("SELECT region, created_at, erasing, learner_key, minor_until, "
                                      "coalesce(active_at, created_at) FROM learners WHERE tenant = ? AND "
                                      "learner_id = ?", (tenant, learner_id)).fetchone()
            consents = self._consents(self._reads, tenant, learner_id)
        if row is None:
            return None, consents
        dek = self._deks.get(tenant) or self._read_data_key(tenant)
        key = unseal(dek, row[3], context("learner-key", tenant, learner_id))
        minor_until = float(unseal(dek, row[4], context("minor-until", tenant, learner_id)))
        return (VaultEntry(tenant, learner_id, row[0], row[1], key, bool(row[2]), minor_until, consents, row[5]),
                consents)

    def record_consent(self, tenant: str, learner_id: str, decisions: list[dict[str, Any]]) -> None:
        """Append consent decisions (each ``{scope, granted, ...who, how, when}``) in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (last,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM consents WHERE tenant = ? AND "
                                           "learner_id = ?", (tenant, learner_id)).fetchone()
                for n, decision in enumerate(decisions, last + 1):
                    self._db.execute("INSERT INTO consents (tenant, learner_id, seq, record) VALUES (?, ?, ?, ?)",
                                     (tenant, learner_id, n, json.dumps(decision, sort_keys=True)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def consent_history(self, tenant: str, learner_id: str) -> list[dict[str, Any]]:
        """Every consent decision about the learner, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM consents WHERE tenant = ? AND learner_id = ? ORDER BY seq",
                                    (tenant, learner_id)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def profile(self, entry: VaultEntry) -> dict[str, Any] | None:
        """The learner's personal data, decrypted (a read: never waits for a writer); None once erased."""
        with self._read_lock:
            row = self._reads.execute("SELECT profile FROM learners WHERE tenant = ? AND learner_id = ?",
                                      (entry.tenant, entry.learner_id)).fetchone()
        if row is None:  # erased meanwhile
            return None
        return json.loads(unseal(entry.learner_key, row[0], context("profile", entry.tenant, entry.learner_id)))

    def block(self, tenant: str, learner_id: str) -> None:
        """Mark the learner as being erased: from now on nothing resolves them."""
        with self._lock:
            self._db.execute("UPDATE learners SET erasing = 1 WHERE tenant = ? AND learner_id = ?", (tenant, learner_id))

    # --- activity (privacy.retention.vault_days) --------------------------------------------------------------

    def touch(self, tenant: str, learner_id: str, at: float | None = None) -> None:
        """Record the learner's activity at ``at`` (default now; a learner being erased stays as they are)."""
        with self._lock:
            self._db.execute("UPDATE learners SET active_at = ? WHERE tenant = ? AND learner_id = ? AND erasing = 0",
                             (self._clock() if at is None else at, tenant, learner_id))

    def inactive(self, before: float) -> list[tuple[str, str]]:
        """(tenant, learner id) of every learner whose last activity is older than ``before``."""
        with self._lock:
            return [tuple(r) for r in self._db.execute(  # type: ignore[misc]
                "SELECT tenant, learner_id FROM learners WHERE coalesce(active_at, created_at) < ? "
                "ORDER BY tenant, learner_id", (before,))]

    def block_inactive(self, tenant: str, learner_id: str, before: float) -> bool:
        """Block the learner (as :meth:`block`) if still inactive since ``before`` — or blocked already — in one
        statement, so a turn recorded meanwhile spares them. True when they are blocked now."""
        with self._lock:
            return self._db.execute(
                "UPDATE learners SET erasing = 1 WHERE tenant = ? AND learner_id = ? AND "
                "(erasing = 1 OR coalesce(active_at, created_at) < ?)", (tenant, learner_id, before)).rowcount > 0

    def shred(self, tenant: str, learner_id: str) -> bool:
        """Delete the learner's personal data, key and consent records (overwritten on disk; the WAL truncated). True when there
        was something to delete."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute("DELETE FROM learners WHERE tenant = ? AND learner_id = ?",
                                     (tenant, learner_id)).rowcount
                self._db.execute("DELETE FROM registrations WHERE tenant = ? AND learner_id = ?", (tenant, learner_id))
                self._db.execute("DELETE FROM consents WHERE tenant = ? AND learner_id = ?", (tenant, learner_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            embedded_db.truncate_wal(self._db)
        return n > 0

    # --- erasure jobs -----------------------------------------------------------------------------------------

    def _job(self, row: tuple[Any, ...], tenant: str) -> ErasureJob:
        return open_job(self._data_key(tenant), tenant, row[0], *row[1:])

    def erasure(self, tenant: str, refs: list[str]) -> ErasureJob | None:
        """The erasure job of the learner known by any of ``refs`` (their pseudonyms under each secret version)."""
        marks = ",".join("?" * len(refs))
        with self._lock:
            row = self._db.execute(f"SELECT ref, learner, steps, receipt, requested_at, completed_at FROM erasures "  # noqa: S608
                                   f"WHERE tenant = ? AND ref IN ({marks})", (tenant, *refs)).fetchone()
            return self._job(row, tenant) if row else None

    def begin_erasure(self, tenant: str, ref: str, learner_id: str, subject: str, receipt: dict[str, Any], *,
                      restart: bool = False) -> ErasureJob:
        """Record (durably, before any deletion) that the learner is to be erased; the raw id and the
        learner's pseudonym (``subject``) are kept sealed until the job completes, so a crashed erasure can
        resume. ``restart``: replace a completed job (the same client-chosen id used again). A job already
        pending is returned as it is."""
        with self._lock:
            sealed = seal_job(self._data_key(tenant), tenant, ref, learner_id, subject)
            if restart:
                self._db.execute("DELETE FROM erasures WHERE tenant = ? AND ref = ? AND completed_at IS NOT NULL",
                                 (tenant, ref))
            self._db.execute("INSERT OR IGNORE INTO erasures (tenant, ref, learner, steps, receipt, requested_at) "
                             "VALUES (?, ?, ?, '[]', ?, ?)", (tenant, ref, sealed, json.dumps(receipt), self._clock()))
            row = self._db.execute("SELECT ref, learner, steps, receipt, requested_at, completed_at FROM erasures "
                                   "WHERE tenant = ? AND ref = ?", (tenant, ref)).fetchone()
            return self._job(row, tenant)

    def step_done(self, job: ErasureJob, step: str) -> ErasureJob:
        steps = (*job.steps, step)
        with self._lock:
            self._db.execute("UPDATE erasures SET steps = ? WHERE tenant = ? AND ref = ? AND requested_at = ? "
                             "AND completed_at IS NULL",  # this job, not the same learner's next one
                             (json.dumps(steps), job.tenant, job.ref, job.requested_at))
        return ErasureJob(job.tenant, job.ref, job.learner_id, steps, job.receipt, job.requested_at, None, job.subject)

    def finish_erasure(self, job: ErasureJob, receipt: dict[str, Any]) -> ErasureJob:
        """Complete the job: the receipt is kept, the sealed raw id is wiped."""
        now = self._clock()
        with self._lock:
            self._db.execute("UPDATE erasures SET learner = NULL, receipt = ?, completed_at = ? "
                             "WHERE tenant = ? AND ref = ? AND requested_at = ? AND completed_at IS NULL",
                             (json.dumps(receipt), now, job.tenant, job.ref, job.requested_at))
            embedded_db.truncate_wal(self._db)
        return ErasureJob(job.tenant, job.ref, None, job.steps, receipt, job.requested_at, now)

    def erasing(self, tenant: str, refs: list[str]) -> bool:
        """Whether an erasure of the learner known by any of ``refs`` is under way (a read: never waits)."""
        marks = ",".join("?" * len(refs))
        with self._read_lock:
            return self._reads.execute(f"SELECT 1 FROM erasures WHERE tenant = ? AND ref IN ({marks}) "  # noqa: S608
                                       "AND completed_at IS NULL", (tenant, *refs)).fetchone() is not None

    def claim(self, job: ErasureJob, seconds: float) -> bool:
        """Whether this process may resume ``job`` for the next ``seconds`` (one resuming replica at a time;
        0 seconds: release the claim, so the next round may take it)."""
        now = self._clock()
        with self._lock:
            if seconds <= 0:
                self._db.execute("UPDATE erasures SET claimed_until = NULL WHERE tenant = ? AND ref = ? AND "
                                 "requested_at = ?", (job.tenant, job.ref, job.requested_at))
                return False
            return self._db.execute(
                "UPDATE erasures SET claimed_until = ? WHERE tenant = ? AND ref = ? AND requested_at = ? AND "
                "completed_at IS NULL AND coalesce(claimed_until, 0) < ?",
                (now + seconds, job.tenant, job.ref, job.requested_at, now)).rowcount > 0

    def pending_erasures(self) -> list[ErasureJob]:
        with self._lock:
            rows = self._db.execute("SELECT tenant, ref, learner, steps, receipt, requested_at, completed_at "
                                    "FROM erasures WHERE completed_at IS NULL ORDER BY requested_at").fetchall()
            return [self._job(row[1:], row[0]) for row in rows]

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reads.close()


__all__ = ["ErasureJob", "RegistrationConflict", "Vault", "VaultCorrupt", "VaultEntry", "new_learner_id"]
