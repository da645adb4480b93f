"""Durable learner stores behind one interface: Redis (production) and SQLite in WAL mode (embedded default).

``apply`` is atomic and idempotent: it reads the context, applies the update function, and commits the new
context together with the update's turn id in one transaction (Redis WATCH/MULTI/EXEC over the learner's hash
and its turn set; SQLite BEGIN IMMEDIATE). A turn id seen before changes nothing. It returns only once the
write is durable (Redis with ``appendfsync always``; SQLite with ``synchronous=FULL``).
"""

# size: the two backends of one protocol side by side (apply, forget, migrate), so their semantics stay identical
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

from tutor_cluster import embedded_db
from tutor_cluster.config.learner import StoreConfig
from tutor_cluster.errors import Forbidden
from tutor_cluster.identity import KEY_SEPARATOR, learner_key, split_learner_key
from tutor_cluster.learner.context import LearnerContext, LearnerUpdate
from tutor_cluster.redis_aof import rewrite_aof

UpdateFn = Callable[[LearnerContext | None, LearnerUpdate], LearnerContext]


class Applied(NamedTuple):
    """Result of ``apply``: the context before and after, and whether this turn id was new."""

    before: LearnerContext | None
    after: LearnerContext
    applied: bool
#: Turn ids kept per learner for idempotency (a retry arrives seconds after the original, not weeks).
TURN_IDS_KEPT = 5000


class QuotaExceeded(Forbidden):
    """Creating this learner would exceed its tenant's quota."""

    kind = "learner_quota_exceeded"


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or did not confirm the write; nothing was applied. Retry later."""


class LearnerStore(Protocol):
    def get(self, learner_id: str) -> LearnerContext | None: ...

    def apply(self, learner_id: str, update: LearnerUpdate, fn: UpdateFn, quota: int | None = None) -> Applied: ...

    def applied_turns(self, learner_id: str) -> set[str]: ...

    def forget(self, learner_id: str, *, compact: bool = True) -> bool: ...

    def sweep(self, keep: Keep) -> tuple[int, int]: ...

    def ping(self) -> bool: ...

    def legacy_keys(self) -> list[str]: ...

    def migrate_legacy(self, tenant: str) -> int: ...

    def close(self) -> None: ...


#: What retention keeps of a context: None (delete it), itself, or a trimmed copy.
Keep = Callable[[LearnerContext], LearnerContext | None]
#: Contexts the retention sweep reads per batch.
SWEEP_BATCH = 500


def _adopt(ctx: LearnerContext, tenant: str) -> LearnerContext:
    return ctx.model_copy(update={"tenant": tenant})


class SQLiteStore:
    def __init__(self, path: str | Path, timeout_s: float = 1.0) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = embedded_db.connect(self.path, timeout_s=timeout_s, schema=(
            "CREATE TABLE IF NOT EXISTS learners (id TEXT PRIMARY KEY, version INTEGER NOT NULL, ctx TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS turns (learner_id TEXT NOT NULL, turn_id TEXT NOT NULL, at REAL NOT NULL, "
            "PRIMARY KEY (learner_id, turn_id))"))

    def get(self, learner_id: str) -> LearnerContext | None:
        with self._lock:
            try:
                row = self._db.execute("SELECT ctx FROM learners WHERE id = ?", (learner_id,)).fetchone()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc
        return LearnerContext.model_validate_json(row[0]) if row else None

    def apply(self, learner_id: str, update: LearnerUpdate, fn: UpdateFn, quota: int | None = None) -> Applied:
        """``quota``: refuse (:class:`QuotaExceeded`) to create a learner when its tenant has that many."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute("SELECT ctx FROM learners WHERE id = ?", (learner_id,)).fetchone()
                    current = LearnerContext.model_validate_json(row[0]) if row else None
                    if current is None and quota is not None:
                        tenant = split_learner_key(learner_id)[0] or ""
                        (count,) = self._db.execute(  # the key range of the tenant: served by the primary key
                            "SELECT count(*) FROM learners WHERE id >= ? AND id < ?",
                            (tenant + KEY_SEPARATOR, tenant + chr(ord(KEY_SEPARATOR) + 1))).fetchone()
                        if count >= quota:
                            raise QuotaExceeded(f"tenant {tenant!r} has {count} learners, its quota")
                    seen = self._db.execute("SELECT 1 FROM turns WHERE learner_id = ? AND turn_id = ?",
                                            (learner_id, update.turn_id)).fetchone()
                    if seen and current is not None:
                        self._db.execute("ROLLBACK")
                        return Applied(current, current, False)
                    new = fn(current, update)
                    self._db.execute(
                        "INSERT INTO learners (id, version, ctx) VALUES (?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET version = excluded.version, ctx = excluded.ctx",
                        (learner_id, new.version, new.model_dump_json()))
                    self._db.execute("INSERT INTO turns (learner_id, turn_id, at) VALUES (?, ?, ?)",
                                     (learner_id, update.turn_id, time.time()))
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc
        return Applied(current, new, True)

    def forget(self, learner_id: str, *, compact: bool = True) -> bool:
        """Delete the learner and their applied turn ids (erasure): overwritten on disk, the WAL truncated
        (``compact``). True when there was a learner."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    n = self._db.execute("DELETE FROM learners WHERE id = ?", (learner_id,)).rowcount
                    self._db.execute("DELETE FROM turns WHERE learner_id = ?", (learner_id,))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                if compact:
                    embedded_db.truncate_wal(self._db)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc
        return n > 0

    def sweep(self, keep: Keep) -> tuple[int, int]:
        """Apply retention to every stored context: (deleted, trimmed). A context a writer changed meanwhile is
        left as the writer made it (writes apply retention themselves)."""
        deleted = trimmed = 0
        after = ""
        while True:
            with self._lock:
                rows = self._db.execute("SELECT id, version, ctx FROM learners WHERE id > ? ORDER BY id LIMIT ?",
                                        (after, SWEEP_BATCH)).fetchall()
                if not rows:
                    break
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for key, version, raw in rows:
                        ctx = LearnerContext.model_validate_json(raw)
                        kept = keep(ctx)
                        if kept is None:
                            n = self._db.execute("DELETE FROM learners WHERE id = ? AND version = ?",
                                                 (key, version)).rowcount
                            if n:
                                self._db.execute("DELETE FROM turns WHERE learner_id = ?", (key,))
                            deleted += n
                        elif kept != ctx:
                            trimmed += self._db.execute("UPDATE learners SET ctx = ? WHERE id = ? AND version = ?",
                                                        (kept.model_dump_json(), key, version)).rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            after = rows[-1][0]
        with self._lock:
            embedded_db.truncate_wal(self._db)
        return deleted, trimmed

    def applied_turns(self, learner_id: str) -> set[str]:
        """Turn ids applied to this learner (audit; idempotency window)."""
        with self._lock:
            rows = self._db.execute("SELECT turn_id FROM turns WHERE learner_id = ?", (learner_id,)).fetchall()
        return {r[0] for r in rows}

    def legacy_keys(self) -> list[str]:
        """Learners written before tenancy (their key has no tenant)."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM learners WHERE instr(id, ?) = 0", (KEY_SEPARATOR,)).fetchall()
        return [r[0] for r in rows]

    def migrate_legacy(self, tenant: str) -> int:
        """Move every pre-tenancy learner (and its applied turn ids) under ``tenant``, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT id, ctx FROM learners WHERE instr(id, ?) = 0",
                                        (KEY_SEPARATOR,)).fetchall()
                for old, raw in rows:
                    new = learner_key(tenant, old)
                    if self._db.execute("SELECT 1 FROM learners WHERE id = ?", (new,)).fetchone():
                        raise ValueError(f"learner {new!r} exists already; nothing was migrated")
                    ctx = _adopt(LearnerContext.model_validate_json(raw), tenant)
                    self._db.execute("UPDATE learners SET id = ?, ctx = ? WHERE id = ?", (new, ctx.model_dump_json(), old))
                    self._db.execute("UPDATE turns SET learner_id = ? WHERE learner_id = ?", (new, old))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisStore:
    """One hash per learner (``ctx`` JSON + ``version``) and a sorted set of applied turn ids."""

    def __init__(self, url: str, timeout_s: float = 1.0, prefix: str = "tc") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           health_check_interval=0)
        self._errors = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError,
                        redis.exceptions.ResponseError)
        self._watch_error = redis.WatchError
        self._prefix = prefix

    def _keys(self, learner_id: str) -> tuple[str, str]:
        base = f"{self._prefix}:learner:{{{learner_id}}}"  # hash tag: both keys on one cluster slot
        return base, base + ":turns"

    def get(self, learner_id: str) -> LearnerContext | None:
        key, _ = self._keys(learner_id)
        try:
            raw = self._redis.hget(key, "ctx")
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return LearnerContext.model_validate_json(raw) if raw else None

    def _tenant_set(self, learner_id: str) -> str:
        return f"{self._prefix}:tenant:{{{split_learner_key(learner_id)[0] or ''}}}:learners"

    def apply(self, learner_id: str, update: LearnerUpdate, fn: UpdateFn, quota: int | None = None) -> Applied:
        """``quota`` as for SQLite, checked against the tenant's learner set before the transaction (best
        effort: concurrent creations may overshoot by a few)."""
        key, turns = self._keys(learner_id)
        try:
            if quota is not None and not self._redis.exists(key):
                count = self._redis.scard(self._tenant_set(learner_id))
                if count >= quota:
                    raise QuotaExceeded(f"tenant {split_learner_key(learner_id)[0]!r} has {count} learners, its quota")
            with self._redis.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key, turns)
                        raw = pipe.hget(key, "ctx")
                        current = LearnerContext.model_validate_json(raw) if raw else None
                        if current is not None and pipe.zscore(turns, update.turn_id) is not None:
                            pipe.unwatch()
                            return Applied(current, current, False)
                        new = fn(current, update)
                        pipe.multi()
                        pipe.hset(key, mapping={"ctx": new.model_dump_json(), "version": new.version})
                        pipe.zadd(turns, {update.turn_id: time.time()})
                        pipe.zremrangebyrank(turns, 0, -TURN_IDS_KEPT - 1)
                        pipe.execute()  # EXEC returns after the AOF fsync (appendfsync always)
                        if quota is not None:
                            self._redis.sadd(self._tenant_set(learner_id), learner_id)
                        return Applied(current, new, True)
                    except self._watch_error:
                        continue  # another writer won the race: re-read and re-apply
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def forget(self, learner_id: str, *, compact: bool = True) -> bool:
        """Delete the learner, their applied turn ids and their place in the tenant's set (erasure), then ask
        Redis to rewrite its append-only file so the deleted values leave the disk too (``compact``). True when
        there was a learner."""
        key, turns = self._keys(learner_id)
        try:
            with self._redis.pipeline() as pipe:
                pipe.delete(key, turns)
                pipe.srem(self._tenant_set(learner_id), learner_id)
                deleted, _ = pipe.execute()
            if compact:
                self.compact()
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return bool(deleted)

    def sweep(self, keep: Keep) -> tuple[int, int]:
        """As :meth:`SQLiteStore.sweep` (WATCH per learner: one a writer touched meanwhile is skipped); then an
        AOF rewrite, so what was deleted leaves the disk."""
        deleted = trimmed = 0
        head = f"{self._prefix}:learner:{{"
        for raw_key in self._redis.scan_iter(match=f"{head}*}}", count=SWEEP_BATCH):
            learner_id = raw_key.decode()[len(head):-1]
            key, turns = self._keys(learner_id)
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, "ctx")
                    if raw is None:
                        continue
                    ctx = LearnerContext.model_validate_json(raw)
                    kept = keep(ctx)
                    if kept == ctx:
                        continue
                    pipe.multi()
                    if kept is None:
                        pipe.delete(key, turns)
                        pipe.srem(self._tenant_set(learner_id), learner_id)
                    else:
                        pipe.hset(key, "ctx", kept.model_dump_json())
                    pipe.execute()
                except self._watch_error:
                    continue
            deleted, trimmed = deleted + (kept is None), trimmed + (kept is not None)
        if deleted or trimmed:
            self.compact()
        return deleted, trimmed

    def compact(self) -> None:
        """An AOF rewrite that starts after the deletions so far (see :func:`tutor_cluster.redis_aof.rewrite_aof`)."""
        try:
            rewrite_aof(self._redis)
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def applied_turns(self, learner_id: str) -> set[str]:
        """Turn ids applied to this learner (audit; the last TURN_IDS_KEPT)."""
        _, turns = self._keys(learner_id)
        try:
            return {t.decode() for t in self._redis.zrange(turns, 0, -1)}
        except self._errors as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def legacy_keys(self) -> list[str]:
        """Learners written before tenancy (their key has no tenant)."""
        head = f"{self._prefix}:learner:{{"
        out = []
        for raw in self._redis.scan_iter(match=f"{head}*}}", count=1000):
            inner = raw.decode()[len(head):-1]
            if KEY_SEPARATOR not in inner:
                out.append(inner)
        return out

    def migrate_legacy(self, tenant: str) -> int:
        """Move every pre-tenancy learner (and its applied turn ids) under ``tenant``; per learner atomic
        (MULTI/EXEC), so a rerun after an interruption finishes the rest."""
        moved = 0
        for old in self.legacy_keys():
            (key, turns), (new_key, new_turns) = self._keys(old), self._keys(learner_key(tenant, old))
            if self._redis.exists(new_key):
                raise ValueError(f"learner {learner_key(tenant, old)!r} exists already; stopped after {moved}")
            raw = self._redis.hget(key, "ctx")
            if raw is None:
                continue
            ctx = _adopt(LearnerContext.model_validate_json(raw), tenant)
            with self._redis.pipeline() as pipe:  # MULTI/EXEC: old keys gone exactly when new ones exist
                pipe.hset(key, "ctx", ctx.model_dump_json())
                pipe.rename(key, new_key)
                if self._redis.exists(turns):
                    pipe.rename(turns, new_turns)
                pipe.execute()
            moved += 1
        return moved

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False

    def close(self) -> None:
        self._redis.close()


def open_store(config: StoreConfig) -> LearnerStore:
    if config.backend == "redis":
        return RedisStore(config.redis_url, config.timeout_s, config.key_prefix)
    return SQLiteStore(config.sqlite_path, config.timeout_s)

