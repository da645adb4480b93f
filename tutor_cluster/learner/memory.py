"""Learner memory: a fixed set of named Ray actors, each caching contexts (LRU) in front of a durable store.

Learners are assigned to actors by consistent hashing of the learner key (``tenant/learner_id``), so one learner's
updates are serialised by one actor. Writes go through to the store and are acknowledged only once durable;
the cache changes only after the commit, so no reader ever sees a half-applied update. Actors restart
automatically (``max_restarts=-1``) and rebuild lazily from the store; calls in flight when an actor dies are
retried by Ray (``max_task_retries=-1``) and the update's turn id makes the retry a no-op if it had committed.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import ray

from tutor_cluster.config.learner import MemoryConfig
from tutor_cluster.config.privacy import RetentionConfig
from tutor_cluster.learner.context import LearnerContext, LearnerUpdate, apply_update, new_context, retained
from tutor_cluster.learner.stores import Applied, StoreUnavailable, open_store
from tutor_cluster.telemetry.metrics import Metrics


class LearnerMemoryActor:
    """Body of one memory actor (also usable in-process, e.g. in unit tests)."""

    def __init__(self, config: MemoryConfig, retention: RetentionConfig | None = None) -> None:
        self._config = config
        self._retention = retention or RetentionConfig()
        self._store = open_store(config.store)
        self._cache: OrderedDict[str, LearnerContext] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._learner_locks: dict[str, threading.Lock] = {}
        self._stats = {"hits": 0, "misses": 0, "applied": 0, "duplicates": 0, "store_errors": 0}
        self._metrics = Metrics()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._cache_lock:
            return self._learner_locks.setdefault(key, threading.Lock())

    def _cache_put(self, key: str, ctx: LearnerContext) -> None:
        with self._cache_lock:
            self._cache[key] = ctx
            self._cache.move_to_end(key)
            while len(self._cache) > self._config.cache_capacity:
                evicted, _ = self._cache.popitem(last=False)
                self._learner_locks.pop(evicted, None)

    def _cached(self, key: str) -> LearnerContext | None:
        with self._cache_lock:
            ctx = self._cache.get(key)
            if ctx is not None:
                self._cache.move_to_end(key)
                self._stats["hits"] += 1
                self._metrics.inc("tutor_memory_reads", result="hit")
            return ctx

    def get(self, key: str) -> LearnerContext | None:
        """Served from memory when cached; else read from the store (StoreUnavailable if it is down). What
        retention no longer allows is never served: an expired context reads as None (and is deleted), old
        turn summaries are left out."""
        ctx = self._cached(key)
        if ctx is None:
            self._stats["misses"] += 1
            self._metrics.inc("tutor_memory_reads", result="miss")
            with self._lock_for(key):  # a forget or apply meanwhile cannot leave a stale copy in the cache
                try:
                    ctx = self._store.get(key)
                except StoreUnavailable:
                    self._stats["store_errors"] += 1
                    raise
                if ctx is not None:
                    self._cache_put(key, ctx)
        if ctx is None:
            return None
        kept = retained(ctx, self._retention)
        if kept is None:
            self._expire(key)
        return kept

    def _expire(self, key: str) -> None:
        """Delete an expired context — checked again under the learner's lock, so a turn just written by
        :meth:`apply` (which holds it) is never what goes."""
        with self._lock_for(key):
            current = self._store.get(key)
            if current is not None and retained(current, self._retention) is None:
                self._store.forget(key, compact=False)  # the retention sweep compacts the store once
            with self._cache_lock:
                self._cache.pop(key, None)

    def apply(self, key: str, update: LearnerUpdate) -> Applied:
        """Apply durably, then cache. Returns (before, after, applied); applied is False for a repeated turn id.
        Both contexts as retention allows them (an expired one: before None, after a new context)."""
        policy = self._config.policy

        def fn(current: LearnerContext | None, upd: LearnerUpdate) -> LearnerContext:
            kept = retained(current, self._retention) if current is not None else None
            return apply_update(kept or new_context(key), upd, policy)

        with self._lock_for(key):
            try:
                result = self._store.apply(key, update, fn, self._config.max_learners_per_tenant)
            except StoreUnavailable:
                self._stats["store_errors"] += 1
                raise
            self._cache_put(key, result.after)
        self._stats["applied" if result.applied else "duplicates"] += 1
        before = retained(result.before, self._retention) if result.before is not None else None
        after = retained(result.after, self._retention) or new_context(key)
        return Applied(before, after, result.applied)

    def forget(self, key: str, *, compact: bool = True) -> bool:
        """Erase the learner: from the store first, then from the cache (a read in between finds nothing
        either way). True when the store had them."""
        with self._lock_for(key):
            existed = self._store.forget(key, compact=compact)
            with self._cache_lock:
                self._cache.pop(key, None)
        return existed

    def stats(self) -> dict[str, int]:
        with self._cache_lock:
            return {**self._stats, "cached": len(self._cache)}

    def ping(self) -> bool:
        return self._store.ping()


class HashRing:
    """Consistent hashing of learner ids onto ``n`` actors (virtual nodes smooth the spread)."""

    def __init__(self, n: int, vnodes: int = 64) -> None:
        points = sorted((self._hash(f"{i}#{v}"), i) for i in range(n) for v in range(vnodes))
        self._keys = [p for p, _ in points]
        self._owners = [i for _, i in points]

    @staticmethod
    def _hash(value: str) -> int:
        return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")

    def owner(self, key: str) -> int:
        idx = bisect.bisect(self._keys, self._hash(key)) % len(self._keys)
        return self._owners[idx]


def fingerprint(config: MemoryConfig, retention: RetentionConfig | None = None) -> str:
    """Identifies what the actors were built with (everything but the caller-side deadline)."""
    raw = config.model_dump_json(exclude={"call_timeout_s"} | (set() if config.resources else {"resources"}))
    if retention is not None and retention != RetentionConfig():  # the defaults keep earlier fingerprints
        raw += retention.model_dump_json()
    return hashlib.blake2b(raw.encode(), digest_size=5).hexdigest()


class LearnerMemory:
    """Client side: finds (or creates) the named actors and routes each learner to its owner.

    Actor names carry the settings' fingerprint (``<prefix>-<fingerprint>-<i>``): a deploy with changed memory
    settings (store, cache size, policy, ...) gets new actors built with them instead of silently reusing actors
    that hold the old ones. ``retire_stale`` (the app builder sets it) kills the actors of other fingerprints
    under the same prefix; calls still in flight on them fail and are retried by clients with their turn id.
    """

    def __init__(self, config: MemoryConfig, namespace: str | None = None, *, retire_stale: bool = False,
                 retention: RetentionConfig | None = None) -> None:
        self.config = config
        self.namespace = namespace
        self.fingerprint = fingerprint(config, retention)
        self._ring = HashRing(config.actors)
        remote_cls = ray.remote(LearnerMemoryActor)
        self._actors = [
            remote_cls.options(
                name=self.actor_name(i), namespace=namespace, get_if_exists=True, lifetime="detached",
                max_restarts=-1, max_task_retries=-1, max_concurrency=config.max_concurrency,
                num_cpus=config.num_cpus, resources=dict(config.resources) or None,
            ).remote(config, retention)
            for i in range(config.actors)
        ]
        if retire_stale:
            self.retire_stale()

    def actor_name(self, i: int) -> str:
        return f"{self.config.name_prefix}-{self.fingerprint}-{i}"

    def retire_stale(self) -> list[str]:
        """Kill the memory actors of this prefix that were built with other settings; returns their names."""
        current = {self.actor_name(i) for i in range(self.config.actors)}
        prefix = f"{self.config.name_prefix}-"
        mine = self.namespace or ray.get_runtime_context().namespace
        retired = []
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name, namespace = entry["name"], entry["namespace"]
            if namespace != mine or not name.startswith(prefix) or name in current:
                continue
            rest = name[len(prefix):].split("-")
            if len(rest) != 2 or not rest[1].isdigit():  # not one of ours (e.g. a longer prefix)
                continue
            try:
                ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
            except ValueError:  # gone meanwhile
                continue
            retired.append(name)
        return retired

    def actor_for(self, key: str) -> Any:
        return self._actors[self._ring.owner(key)]

    def get(self, key: str) -> Any:
        """ObjectRef of LearnerContext | None (await it, or ray.get)."""
        return self.actor_for(key).get.remote(key)

    def apply(self, key: str, update: LearnerUpdate) -> Any:
        """ObjectRef of :class:`Applied` (before, after, applied)."""
        return self.actor_for(key).apply.remote(key, update)

    def forget(self, key: str) -> Any:
        """ObjectRef of bool: the learner erased from the store and their actor's cache."""
        return self.actor_for(key).forget.remote(key)

    @property
    def actors(self) -> list[Any]:
        return list(self._actors)
