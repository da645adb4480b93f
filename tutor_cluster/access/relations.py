"""Who is related to which learner, per tenant: the teachers and learners of each class, and each guardian's
children. Kept in the learner store's backend (the same SQLite file, or the same Redis under ``<prefix>:rel:``)
so they live and are backed up with the learners they are about."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from tutor_cluster import embedded_db
from tutor_cluster.config.learner import StoreConfig


class Relations(Protocol):
    def add(self, tenant: str, kind: str, owner: str, member: str) -> None: ...

    def remove(self, tenant: str, kind: str, owner: str, member: str) -> None: ...

    def members(self, tenant: str, kind: str, owner: str) -> set[str]: ...

    def owners(self, tenant: str, kind: str, member: str) -> set[str]: ...

    def close(self) -> None: ...


#: The relation kinds: owner → member.
CLASS_TEACHERS = "class_teachers"  # class id → teacher subjects
CLASS_LEARNERS = "class_learners"  # class id → learner ids
GUARDIAN_LEARNERS = "guardian_learners"  # guardian subject → learner ids
KINDS = (CLASS_TEACHERS, CLASS_LEARNERS, GUARDIAN_LEARNERS)


class SQLiteRelations:
    def __init__(self, path: str | Path, timeout_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._db = embedded_db.connect(path, timeout_s=timeout_s, schema=(
            "CREATE TABLE IF NOT EXISTS relations (tenant TEXT NOT NULL, kind TEXT NOT NULL, "
            "owner TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (tenant, kind, owner, member))",
            "CREATE INDEX IF NOT EXISTS relations_by_member ON relations (tenant, kind, member)"))

    def add(self, tenant: str, kind: str, owner: str, member: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO relations VALUES (?, ?, ?, ?)", (tenant, kind, owner, member))

    def remove(self, tenant: str, kind: str, owner: str, member: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM relations WHERE tenant = ? AND kind = ? AND owner = ? AND member = ?",
                             (tenant, kind, owner, member))

    def members(self, tenant: str, kind: str, owner: str) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT member FROM relations WHERE tenant = ? AND kind = ? AND owner = ?",
                                    (tenant, kind, owner)).fetchall()
        return {r[0] for r in rows}

    def owners(self, tenant: str, kind: str, member: str) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT owner FROM relations WHERE tenant = ? AND kind = ? AND member = ?",
                                    (tenant, kind, member)).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisRelations:
    """Two sets per pair (owner → members, member → owners), written together in MULTI/EXEC."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 2.0) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._prefix = f"{prefix}:rel"

    def _keys(self, tenant: str, kind: str, owner: str, member: str) -> tuple[str, str]:
        return (f"{self._prefix}:{{{tenant}}}:{kind}:o:{owner}", f"{self._prefix}:{{{tenant}}}:{kind}:m:{member}")

    def add(self, tenant: str, kind: str, owner: str, member: str) -> None:
        by_owner, by_member = self._keys(tenant, kind, owner, member)
        with self._redis.pipeline() as pipe:
            pipe.sadd(by_owner, member)
            pipe.sadd(by_member, owner)
            pipe.execute()

    def remove(self, tenant: str, kind: str, owner: str, member: str) -> None:
        by_owner, by_member = self._keys(tenant, kind, owner, member)
        with self._redis.pipeline() as pipe:
            pipe.srem(by_owner, member)
            pipe.srem(by_member, owner)
            pipe.execute()

    def members(self, tenant: str, kind: str, owner: str) -> set[str]:
        return {m.decode() for m in self._redis.smembers(self._keys(tenant, kind, owner, "")[0])}

    def owners(self, tenant: str, kind: str, member: str) -> set[str]:
        return {o.decode() for o in self._redis.smembers(self._keys(tenant, kind, "", member)[1])}

    def close(self) -> None:
        self._redis.close()


def open_relations(store: StoreConfig) -> Relations:
    if store.backend == "redis":
        return RedisRelations(store.redis_url, store.key_prefix, store.timeout_s)
    return SQLiteRelations(store.sqlite_path, store.timeout_s)
