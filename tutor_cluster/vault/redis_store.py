# size: the Redis twin of vault/store.py: the same interface in one class, each write one script or transaction
"""The vault on Redis (``privacy.vault_redis_url``): what several gateway nodes of one region share. The same
interface, sealing and semantics as the SQLite vault (:class:`tutor_cluster.vault.store.Vault`); Redis holds only
sealed values, ids and job states. Run it with AOF (``appendfsync always``) like the learner store: a
registration is acknowledged once it is durable. After an erasure the append-only file is rewritten
(``BGREWRITEAOF``) so deleted values leave the disk too.

Keys (``<prefix>`` per region): ``:tk`` (hash tenant → wrapped data key), ``:l:<tenant>:<id>`` (a learner),
``:c:<tenant>:<id>`` (their consent decisions, a list), ``:r:<tenant>:<request>`` (a registration's
idempotency record), ``:e:<tenant>:<ref>`` (an erasure job), ``:pending`` (jobs not completed, by time) and
``:active`` (learners by their last recorded activity, for ``privacy.retention.vault_days``).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import redis

from tutor_cluster.redis_aof import display_url, rewrite_aof
from tutor_cluster.vault.crypto import KeyEncryptionKeys, VaultCorrupt, context, new_key, seal, unseal
from tutor_cluster.vault.store import (
    ErasureJob,
    RegistrationConflict,
    VaultEntry,
    body_digest,
    new_learner_id,
    open_job,
    seal_job,
    seal_learner,
)


class RedisVault:
    """One region's vault on Redis. Methods block (a round trip or a few): call them off the event loop."""

    remote = True  # reads go over the network (the services run them in a thread)

    def __init__(self, url: str, keks: KeyEncryptionKeys, *, prefix: str = "vault", timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           health_check_interval=0)
        self._p = prefix
        self._keks = keks
        self._deks: dict[str, bytes] = {}
        self._clock = clock
        self.path = f"{display_url(url)} ({prefix})"  # where it is, for messages (no credentials)

    # --- keys -------------------------------------------------------------------------------------------------
    def _k(self, kind: str, tenant: str, name: str) -> str:
        return f"{self._p}:{kind}:{tenant}:{name}"

    def _data_key(self, tenant: str, *, create: bool = False) -> bytes:
        """The tenant's data key; made (and stored wrapped) only by a write that needs one (``create``): a read
        of a tenant without one finds the vault damaged, as SQLite's does."""
        dek = self._deks.get(tenant)
        if dek is not None:
            return dek
        raw = self._redis.hget(f"{self._p}:tk", tenant)
        if raw is None and create:
            fresh, version = new_key(), self._keks.current
            wrapped = seal(self._keks.key(version), fresh, context("tenant-key", tenant))
            self._redis.hsetnx(f"{self._p}:tk", tenant, json.dumps({"v": version, "w": wrapped.hex()}))
            raw = self._redis.hget(f"{self._p}:tk", tenant)
        if raw is None:
            raise VaultCorrupt(f"no data key for tenant {tenant!r}")
        record = json.loads(raw)
        dek = unseal(self._keks.key(record["v"]), bytes.fromhex(record["w"]), context("tenant-key", tenant))
        self._deks[tenant] = dek
        return dek

    def rewrap(self) -> int:
        """Re-wrap every tenant data key with the current KEK (after a KEK rotation); returns how many."""
        rows = self._redis.hgetall(f"{self._p}:tk")
        for tenant_b, raw in rows.items():
            tenant, record = tenant_b.decode(), json.loads(raw)
            dek = unseal(self._keks.key(record["v"]), bytes.fromhex(record["w"]), context("tenant-key", tenant))
            wrapped = seal(self._keks.key(), dek, context("tenant-key", tenant))
            self._redis.hset(f"{self._p}:tk", tenant, json.dumps({"v": self._keks.current, "w": wrapped.hex()}))
        return len(rows)

    # --- learners ---------------------------------------------------------------------------------------------
    def register(self, tenant: str, region: str, profile: dict[str, Any], *, minor_until: float = 0.0,
                 request: tuple[str, str] | None = None) -> tuple[str, float, bool]:
        """As :meth:`Vault.register`; the learner and the idempotency record are written in one transaction."""
        dek = self._data_key(tenant, create=True)
        body = body_digest(dek, request[1]) if request is not None else ""
        reg = self._k("r", tenant, request[0]) if request is not None else None
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    if reg is not None:
                        pipe.watch(reg)
                        seen = pipe.hgetall(reg)
                        if seen:
                            pipe.unwatch()
                            if not {b"body", b"learner_id", b"created_at"} <= seen.keys():
                                raise VaultCorrupt(f"registration record {reg!r} is incomplete")
                            if not hmac.compare_digest(seen[b"body"].decode(), body):
                                raise RegistrationConflict(request[0])  # type: ignore[index]
                            return seen[b"learner_id"].decode(), float(seen[b"created_at"]), False
                    learner_id, now = new_learner_id(region), self._clock()
                    sealed = seal_learner(dek, tenant, learner_id, profile, minor_until)
                    pipe.multi()
                    pipe.hset(self._k("l", tenant, learner_id), mapping={
                        "region": region, "created_at": repr(now), "active_at": repr(now), "erasing": "0",
                        "request": request[0] if request else "", **sealed})
                    pipe.zadd(f"{self._p}:active", {self._member(tenant, learner_id): now})
                    if reg is not None:
                        pipe.hset(reg, mapping={"learner_id": learner_id, "body": body, "created_at": repr(now)})
                    pipe.execute()
                    return learner_id, now, True
                except redis.WatchError:
                    continue  # the same key registered meanwhile: read what it made

    def entry(self, tenant: str, learner_id: str) -> VaultEntry | None:
        return self.lookup(tenant, learner_id)[0]

    def _consents(self, tenant: str, learner_id: str) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self._redis.lrange(self._k("c", tenant, learner_id), 0, -1)]

    def lookup(self, tenant: str, learner_id: str) -> tuple[VaultEntry | None, dict[str, bool]]:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._k("l", tenant, learner_id), "region", "created_at", "erasing", "learner_key",
                       "minor_until", "active_at")
            pipe.lrange(self._k("c", tenant, learner_id), 0, -1)
            row, records = pipe.execute()
        consents = {d["scope"]: d["granted"] for d in map(json.loads, records)}
        if row[0] is None:
            return None, consents
        dek = self._data_key(tenant)
        key = unseal(dek, row[3], context("learner-key", tenant, learner_id))
        minor_until = float(unseal(dek, row[4], context("minor-until", tenant, learner_id)))
        return (VaultEntry(tenant, learner_id, row[0].decode(), float(row[1]), key, row[2] == b"1", minor_until,
                           consents, float(row[5] or row[1])), consents)

    def record_consent(self, tenant: str, learner_id: str, decisions: list[dict[str, Any]]) -> None:
        if decisions:
            self._redis.rpush(self._k("c", tenant, learner_id), *(json.dumps(d, sort_keys=True) for d in decisions))

    def consent_history(self, tenant: str, learner_id: str) -> list[dict[str, Any]]:
        return self._consents(tenant, learner_id)

    def profile(self, entry: VaultEntry) -> dict[str, Any] | None:
        raw = self._redis.hget(self._k("l", entry.tenant, entry.learner_id), "profile")
        if raw is None:
            return None
        return json.loads(unseal(entry.learner_key, raw, context("profile", entry.tenant, entry.learner_id)))

    _BLOCK = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'erasing', '1') end"

    def block(self, tenant: str, learner_id: str) -> None:
        """Mark an existing learner as being erased (one atomic script: HSET alone would make a stub)."""
        self._redis.eval(self._BLOCK, 1, self._k("l", tenant, learner_id))

    def shred(self, tenant: str, learner_id: str) -> bool:
        key = self._k("l", tenant, learner_id)
        request = self._redis.hget(key, "request")
        keys = [key, self._k("c", tenant, learner_id)]
        if request:
            keys.append(self._k("r", tenant, request.decode()))
        with self._redis.pipeline() as pipe:
            pipe.delete(*keys)
            pipe.zrem(f"{self._p}:active", self._member(tenant, learner_id))
            n = pipe.execute()[0]
        rewrite_aof(self._redis)
        return n > 0

    # --- activity (privacy.retention.vault_days) --------------------------------------------------------------
    @staticmethod
    def _member(tenant: str, name: str) -> str:
        """A (tenant, learner id or job ref) pair as one sorted-set member."""
        return f"{tenant}\x00{name}"

    _TOUCH = """
    if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'erasing') == '1' then return 0 end
    redis.call('HSET', KEYS[1], 'active_at', ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
    return 1
    """

    def touch(self, tenant: str, learner_id: str, at: float | None = None) -> None:
        """As :meth:`Vault.touch` (one script: a learner erased meanwhile is not recreated as a stub)."""
        self._redis.eval(self._TOUCH, 2, self._k("l", tenant, learner_id), f"{self._p}:active",
                         repr(self._clock() if at is None else at), self._member(tenant, learner_id))

    def _backfill_activity(self) -> None:
        """Once per vault: learners registered before activity was recorded join ``:active`` by their
        registration time (ZADD NX: a time recorded meanwhile stays)."""
        if self._redis.exists(f"{self._p}:active-backfilled"):
            return
        for key in self._redis.scan_iter(match=f"{self._p}:l:*", count=1000):
            tenant, _, learner_id = key.decode()[len(self._p) + 3:].partition(":")
            self._redis.eval(self._BACKFILL, 2, key, f"{self._p}:active", self._member(tenant, learner_id))
        self._redis.set(f"{self._p}:active-backfilled", "1")

    #: One learner into ``:active`` by their last activity or registration, only if they still exist (a learner
    #: shredded meanwhile is not added back) and are not there yet.
    _BACKFILL = """
    local at = redis.call('HGET', KEYS[1], 'active_at') or redis.call('HGET', KEYS[1], 'created_at')
    if not at then return 0 end
    return redis.call('ZADD', KEYS[2], 'NX', at, ARGV[1])
    """

    def inactive(self, before: float) -> list[tuple[str, str]]:
        self._backfill_activity()
        out = []
        for member in self._redis.zrangebyscore(f"{self._p}:active", "-inf", f"({before!r}"):
            tenant, learner_id = member.decode().split("\x00", 1)
            out.append((tenant, learner_id))
        return sorted(out)

    _BLOCK_INACTIVE = """
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    if redis.call('HGET', KEYS[1], 'erasing') == '1' then return 1 end
    local at = redis.call('HGET', KEYS[1], 'active_at') or redis.call('HGET', KEYS[1], 'created_at')
    if tonumber(at) >= tonumber(ARGV[1]) then return 0 end
    redis.call('HSET', KEYS[1], 'erasing', '1')
    return 1
    """

    def block_inactive(self, tenant: str, learner_id: str, before: float) -> bool:
        """As :meth:`Vault.block_inactive`."""
        return bool(self._redis.eval(self._BLOCK_INACTIVE, 1, self._k("l", tenant, learner_id), repr(before)))

    # --- erasure jobs -----------------------------------------------------------------------------------------
    def _job(self, tenant: str, ref: str, raw: dict[bytes, bytes]) -> ErasureJob:
        completed = raw.get(b"completed_at")
        return open_job(self._data_key(tenant), tenant, ref, raw.get(b"learner"), raw[b"steps"].decode(),
                        raw[b"receipt"].decode(), float(raw[b"requested_at"]),
                        float(completed) if completed else None)

    def erasure(self, tenant: str, refs: list[str]) -> ErasureJob | None:
        for ref in refs:
            raw = self._redis.hgetall(self._k("e", tenant, ref))
            if raw:
                return self._job(tenant, ref, raw)
        return None

    def begin_erasure(self, tenant: str, ref: str, learner_id: str, subject: str, receipt: dict[str, Any], *,
                      restart: bool = False) -> ErasureJob:
        key = self._k("e", tenant, ref)
        sealed = seal_job(self._data_key(tenant, create=True), tenant, ref, learner_id, subject)
        now = self._clock()
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hgetall(key)
                    if raw and not (restart and raw.get(b"completed_at")):
                        pipe.unwatch()
                        return self._job(tenant, ref, raw)
                    pipe.multi()
                    pipe.delete(key)
                    pipe.hset(key, mapping={"learner": sealed, "steps": "[]", "receipt": json.dumps(receipt),
                                            "requested_at": repr(now)})
                    pipe.zadd(f"{self._p}:pending", {self._member(tenant, ref): now})
                    pipe.execute()
                    return self._job(tenant, ref, self._redis.hgetall(key))
                except redis.WatchError:
                    continue

    #: Applies a job update only to the job it was read from (same requested_at, not completed): a replica still
    #: running an old job cannot write over the same learner's next erasure.
    _UPDATE_JOB = """
    if redis.call('HGET', KEYS[1], 'requested_at') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'completed_at') == 1
    then return 0 end
    if ARGV[2] == 'step' then redis.call('HSET', KEYS[1], 'steps', ARGV[3]) return 1 end
    redis.call('HDEL', KEYS[1], 'learner')
    redis.call('HSET', KEYS[1], 'receipt', ARGV[3], 'completed_at', ARGV[4])
    redis.call('ZREM', KEYS[2], ARGV[5])
    return 1
    """

    def _update_job(self, job: ErasureJob, kind: str, value: str, now: float = 0.0) -> None:
        self._redis.eval(self._UPDATE_JOB, 2, self._k("e", job.tenant, job.ref), f"{self._p}:pending",
                         repr(job.requested_at), kind, value, repr(now), self._member(job.tenant, job.ref))

    def step_done(self, job: ErasureJob, step: str) -> ErasureJob:
        steps = (*job.steps, step)
        self._update_job(job, "step", json.dumps(steps))
        return ErasureJob(job.tenant, job.ref, job.learner_id, steps, job.receipt, job.requested_at, None, job.subject)

    def finish_erasure(self, job: ErasureJob, receipt: dict[str, Any]) -> ErasureJob:
        now = self._clock()
        self._update_job(job, "finish", json.dumps(receipt), now)
        rewrite_aof(self._redis)
        return ErasureJob(job.tenant, job.ref, None, job.steps, receipt, job.requested_at, now)

    def erasing(self, tenant: str, refs: list[str]) -> bool:
        with self._redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.zscore(f"{self._p}:pending", self._member(tenant, ref))
            return any(score is not None for score in pipe.execute())

    def claim(self, job: ErasureJob, seconds: float) -> bool:
        """As :meth:`Vault.claim` (0 seconds: release)."""
        key = f"{self._p}:claim:{self._member(job.tenant, job.ref)}:{job.requested_at!r}"
        if seconds <= 0:
            self._redis.delete(key)
            return False
        return bool(self._redis.set(key, "1", nx=True, px=max(1, int(seconds * 1000))))

    def pending_erasures(self) -> list[ErasureJob]:
        jobs = []
        for member in self._redis.zrange(f"{self._p}:pending", 0, -1):
            tenant, ref = member.decode().split("\x00", 1)
            raw = self._redis.hgetall(self._k("e", tenant, ref))
            if raw:
                jobs.append(self._job(tenant, ref, raw))
        return jobs

    def close(self) -> None:
        self._redis.close()
