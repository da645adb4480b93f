"""The audit log on Redis (``privacy.audit_redis_url``): one hash chain that the gateway replicas of every node of
a region extend. The same records, chain, retention and verification as the SQLite log
(:class:`tutor_cluster.audit.log.AuditStore`); run Redis with AOF (``appendfsync always``) so an access is
recorded durably before the request goes on.

An append is linked to the head the replica last saw and committed by a script only if that is still the head
(compare-and-set), else retried on the head the script returns: replicas on several nodes never fork the
chain. Keys (``<prefix>`` per region): ``:log`` (the records, oldest first), ``:cp`` (the checkpoint retention
keeps: seq, hash and time of the last record removed, how many were) and ``:s:<tenant>:<subject>`` (the seqs of
the records about one learner's pseudonym, for the audit route). Redis has no append-only triggers: an edit
behind the log's back is what ``tutor-cluster audit verify`` finds, as for SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import redis

from tutor_cluster.audit.chain import GENESIS, chained
from tutor_cluster.redis_aof import display_url

#: Appends that find the head moved (another replica wrote first) before one gives up with a RedisError.
_MAX_RETRIES = 1000


class RedisAuditStore:
    """A region's audit log on Redis. Methods block (a round trip or a few): call them off the event loop."""

    def __init__(self, url: str, *, prefix: str = "audit", timeout_s: float = 2.0) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           health_check_interval=0)
        self._p = prefix
        self._head: tuple[int, str] | None = None  # the head this store last wrote or saw
        self.path = f"{display_url(url)} ({prefix})"  # where it is, for messages (no credentials)

    # --- writes ----------------------------------------------------------------------------------------------
    #: KEYS: log, checkpoint[, subject index]. ARGV: the head seq and hash the record links to, the record, its seq.
    #: Returns '' when appended, else the current head as 'seq hash'.
    _APPEND = """
    local seq, hash = 0, ARGV[5]
    local last = redis.call('LINDEX', KEYS[1], -1)
    if last then
      local r = cjson.decode(last)
      seq, hash = tonumber(r.seq), r.hash
    else
      local cp = redis.call('HMGET', KEYS[2], 'seq', 'hash')
      if cp[1] then seq, hash = tonumber(cp[1]), cp[2] end
    end
    if seq ~= tonumber(ARGV[1]) or hash ~= ARGV[2] then return string.format('%d %s', seq, hash) end
    redis.call('RPUSH', KEYS[1], ARGV[3])
    if #KEYS == 3 then redis.call('RPUSH', KEYS[3], ARGV[4]) end
    return ''
    """

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        head = self._head or (0, GENESIS)
        keys = [f"{self._p}:log", f"{self._p}:cp"]
        if fields.get("subject") is not None:
            keys.append(self._index(fields["tenant"], fields["subject"]))
        for _ in range(_MAX_RETRIES):
            record = chained(fields, head[0] + 1, head[1])
            moved = self._redis.eval(self._APPEND, len(keys), *keys, head[0], head[1],
                                     json.dumps(record, sort_keys=True), record["seq"], GENESIS)
            if not moved:
                self._head = (record["seq"], record["hash"])
                return record
            seq, _, hash_ = moved.decode().partition(" ")
            head = (int(seq), hash_)
        raise redis.RedisError(f"the audit log's head moved {_MAX_RETRIES} times in a row")

    #: KEYS: log, checkpoint. ARGV: how many records to remove, the seq the last of them must have.
    _EXPIRE = """
    local n = tonumber(ARGV[1])
    local last = redis.call('LINDEX', KEYS[1], n - 1)
    if not last then return -1 end
    local r = cjson.decode(last)
    if tonumber(r.seq) ~= tonumber(ARGV[2]) then return -1 end
    redis.call('LTRIM', KEYS[1], n, -1)
    local expired = tonumber(redis.call('HGET', KEYS[2], 'expired') or '0') + n
    redis.call('HSET', KEYS[2], 'seq', string.format('%d', r.seq), 'hash', r.hash, 'at', r.at, 'expired', expired)
    return n
    """

    def expire(self, before: str) -> int:
        """As :meth:`AuditStore.expire`: the oldest records written before ``before`` (a prefix of the log) go,
        the last one's seq and hash become the checkpoint, in one script (appends go on meanwhile)."""
        n, last_seq, page, reached = 0, None, 500, False
        while not reached:
            rows = self._redis.lrange(f"{self._p}:log", n, n + page - 1)
            for raw in rows:
                record = json.loads(raw)
                if record["at"] >= before:
                    reached = True
                    break
                n, last_seq = n + 1, record["seq"]
            reached = reached or len(rows) < page
        if n == 0:
            return 0
        done = self._redis.eval(self._EXPIRE, 2, f"{self._p}:log", f"{self._p}:cp", n, last_seq)
        if done < 0:
            raise redis.RedisError("the audit log changed under retention (another sweep?); run it again")
        return int(done)

    # --- reads -----------------------------------------------------------------------------------------------
    def _index(self, tenant: str, subject: str) -> str:
        return f"{self._p}:s:{tenant}:{subject}"

    #: KEYS: log, checkpoint, subject indexes. ARGV: limit. The records of the newest seqs, newest first. An index
    #: is in seq order: only its last ``limit`` entries are read, and seqs retention removed leave its front.
    _ABOUT = """
    local base = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
    local limit = tonumber(ARGV[1])
    local seqs = {}
    for i = 3, #KEYS do
      while true do
        local first = redis.call('LINDEX', KEYS[i], 0)
        if not first or tonumber(first) > base then break end
        redis.call('LPOP', KEYS[i])
      end
      for _, s in ipairs(redis.call('LRANGE', KEYS[i], -limit, -1)) do table.insert(seqs, tonumber(s)) end
    end
    table.sort(seqs, function(a, b) return a > b end)
    local out = {}
    for i = 1, math.min(#seqs, limit) do
      local rec = redis.call('LINDEX', KEYS[1], seqs[i] - base - 1)
      if rec then table.insert(out, rec) end
    end
    return out
    """

    def about(self, tenant: str, subjects: list[str], limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records about one learner (any of ``subjects``) of one tenant, newest first (a
        record that does not read as one is left out: `audit verify` names it)."""
        if limit <= 0 or not subjects:
            return []
        keys = [f"{self._p}:log", f"{self._p}:cp", *(self._index(tenant, s) for s in subjects)]
        out = []
        for raw in self._redis.eval(self._ABOUT, len(keys), *keys, limit):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("tenant") == tenant and record.get("subject") in subjects:
                out.append(record)
        return out

    def snapshot(self) -> tuple[tuple[int, str, int] | None, Iterator[dict[str, Any]]]:
        """(the checkpoint as (seq, hash, records expired) or None, every record in stored order), read in one
        transaction so that retention or appends meanwhile cannot shift what verify sees. A row that is not JSON
        reads as an empty record: verify names it."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(f"{self._p}:cp", "seq", "hash", "expired")
            pipe.lrange(f"{self._p}:log", 0, -1)
            cp, rows = pipe.execute()
        checkpoint = (int(cp[0]), cp[1].decode(), int(cp[2] or 0)) if cp[0] is not None else None

        def records() -> Iterator[dict[str, Any]]:
            for raw in rows:
                try:
                    yield json.loads(raw)
                except ValueError:
                    yield {}

        return checkpoint, records()

    def exists(self) -> bool:
        return bool(self._redis.exists(f"{self._p}:log", f"{self._p}:cp"))

    def close(self) -> None:
        self._redis.close()


__all__ = ["RedisAuditStore"]
