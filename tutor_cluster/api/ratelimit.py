"""Request rate limits per API key and per tenant (GCRA: one "theoretical arrival time" per bucket), shared by
every gateway replica through SQLite (one machine) or Redis (a cluster). A request takes a slot from every bucket
that applies, or from none: one transaction (SQLite) or one Lua script (Redis)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tutor_cluster import embedded_db
from tutor_cluster.config.limits import Rate, RateLimitConfig

log = logging.getLogger(f"ray.serve.{__name__}")


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: Rate

    @property
    def interval(self) -> float:
        """Seconds one request occupies at the steady rate."""
        return 60.0 / self.rate.requests_per_minute

    @property
    def tolerance(self) -> float:
        return self.interval * self.rate.burst


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int  # requests per minute of the tightest bucket
    remaining: int  # requests that would be allowed right now, after this one
    reset_s: float  # seconds until the tightest bucket is full again
    retry_after_s: float  # when refused: seconds until one more request fits

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"x-ratelimit-limit", str(self.limit).encode()),
               (b"x-ratelimit-remaining", str(max(self.remaining, 0)).encode()),
               (b"x-ratelimit-reset", str(math.ceil(self.reset_s)).encode())]
        if not self.allowed:
            out.append((b"retry-after", str(max(1, math.ceil(self.retry_after_s))).encode()))
        return out


def decide(buckets: list[Bucket], stored: list[float | None], now: float) -> tuple[Verdict, list[float]]:
    """The verdict for one request and each bucket's new arrival time (unchanged when refused)."""
    new_tats, waits, remaining, resets = [], [], [], []
    for bucket, tat in zip(buckets, stored, strict=True):
        new_tat = max(tat or now, now) + bucket.interval
        allow_at = new_tat - bucket.tolerance
        new_tats.append(new_tat)
        waits.append(max(0.0, allow_at - now))
        remaining.append(int((now - allow_at) // bucket.interval) if allow_at <= now else 0)
        resets.append(new_tat - now)
    allowed = all(w == 0.0 for w in waits)
    tight = min(range(len(buckets)), key=lambda i: (remaining[i], -waits[i]))
    verdict = Verdict(allowed=allowed, limit=buckets[tight].rate.requests_per_minute, remaining=remaining[tight],
                      reset_s=resets[tight], retry_after_s=max(waits))
    return verdict, new_tats if allowed else [t or now for t in stored]


class _Store(Protocol):
    def take(self, buckets: list[Bucket], now: float) -> Verdict: ...


class _SQLiteStore:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        # synchronous OFF: counters, not records; a crash may forget a second of them
        self._db = embedded_db.connect(path, timeout_s=2, synchronous="OFF", schema=(
            "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tat REAL NOT NULL)",))

    def take(self, buckets: list[Bucket], now: float) -> Verdict:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                stored = []
                for b in buckets:
                    row = self._db.execute("SELECT tat FROM buckets WHERE key = ?", (b.key,)).fetchone()
                    stored.append(row[0] if row else None)
                verdict, tats = decide(buckets, stored, now)
                if verdict.allowed:
                    self._db.executemany("INSERT INTO buckets (key, tat) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                                         "SET tat = excluded.tat", [(b.key, t) for b, t in zip(buckets, tats)])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return verdict


_LUA = """
local now = tonumber(ARGV[1])
local allowed = 1
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i]); local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat + interval
  if tats[i] - tolerance > now then allowed = 0 end
end
local stored = {}
for i, key in ipairs(KEYS) do
  stored[i] = redis.call('GET', key) or ''
  if allowed == 1 then
    redis.call('SET', key, tostring(tats[i]), 'PX', math.ceil((tats[i] - now) * 1000) + 1000)
  end
end
return stored
"""


class _RedisStore:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._script = self._redis.register_script(_LUA)
        self._prefix = prefix

    def take(self, buckets: list[Bucket], now: float) -> Verdict:
        args: list[float] = [now]
        for b in buckets:
            args += [b.interval, b.tolerance]
        raw = self._script(keys=[f"{self._prefix}:{b.key}" for b in buckets], args=args)
        stored = [float(v) if v not in (b"", "", None) else None for v in raw]
        return decide(buckets, stored, now)[0]  # the script applied the same rule atomically


class RateLimiter:
    """Checks a request against its key's and its tenant's buckets. When the bucket store cannot be reached the
    request is let through (logged): limits protect the service, they must not take it down."""

    def __init__(self, config: RateLimitConfig, overrides: dict[str, Rate] | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._overrides = overrides or {}  # key id → its own rate (auth.api_keys[].rate)
        self._clock = clock
        self._store: _Store | None = None
        if config.per_key or config.per_tenant or self._overrides:
            self._store = (_RedisStore(config.redis_url, config.key_prefix) if config.backend == "redis"
                           else _SQLiteStore(config.sqlite_path))

    @property
    def enabled(self) -> bool:
        return self._store is not None

    def applies(self, key_id: str) -> bool:
        """Whether any bucket counts this key's requests (if not, :meth:`check` is not worth a call)."""
        return self._store is not None and bool(self._config.per_tenant or self._config.per_key
                                                    or key_id in self._overrides)

    def check(self, key_id: str, tenant: str) -> Verdict | None:
        """The verdict, or None when no limit applies (or the store is down)."""
        if self._store is None:
            return None
        buckets = []
        per_key = self._overrides.get(key_id) or self._config.per_key
        if per_key:
            buckets.append(Bucket(f"key:{tenant}/{key_id}", per_key))
        if self._config.per_tenant:
            buckets.append(Bucket(f"tenant:{tenant}", self._config.per_tenant))
        if not buckets:
            return None
        try:
            return self._store.take(buckets, self._clock())
        except Exception as exc:  # noqa: BLE001 - fail open, loudly
            log.warning("rate limits not applied: %s: %s", type(exc).__name__, exc)
            return None
