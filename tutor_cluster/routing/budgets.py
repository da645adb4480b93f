"""Spending budgets per tenant, class and learner over day / month / term windows.

Before a model call the router *reserves* the call's worst-case cost (prompt estimate + ``max_tokens`` at the
model's prices) against every rule that applies, atomically: either all counters move or none does, so N
concurrent calls against room for M get exactly M reservations. After the call it *settles* the actual cost
(the difference is refunded or charged). Counters live in SQLite (embedded, one file, ``BEGIN IMMEDIATE``) or
Redis (one Lua script), keyed by rule, subject and window, so they survive restarts and are shared by replicas.
The same store keeps the spend ledger: one entry per model interaction, exported to Parquet by
``tutor-cluster routing ledger-export``.
"""

from __future__ import annotations

import calendar
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from tutor_cluster import embedded_db
from tutor_cluster.config.routing import BudgetConfig, BudgetRule, Scope, Term, Window
from tutor_cluster.errors import BudgetExhausted

#: Redis keeps about this many ledger entries (export them to Parquet regularly).
LEDGER_MAX_ENTRIES = 1_000_000

@dataclass(frozen=True)
class Subject:
    """Who is spending. ``learner`` is already pseudonymous (see :func:`pseudonym`)."""

    tenant: str
    class_id: str | None = None
    learner: str | None = None

    def id_for(self, scope: Scope) -> str | None:
        return {"tenant": self.tenant, "class": self.class_id, "learner": self.learner}[scope]


class BudgetExceeded(BudgetExhausted):
    """No room left under a rule; ``retry_after_s`` is when its window resets."""

    def __init__(self, rule: BudgetRule, retry_after_s: int) -> None:
        super().__init__(f"budget {rule.name} (limit {rule.limit:g}) is spent; it resets in {retry_after_s} s",
                         retry_after_s=retry_after_s)
        self.rule = rule
        self.retry_after_s: int = retry_after_s


@dataclass(frozen=True)
class Reservation:
    keys: tuple[str, ...]
    amount: float
    soft: tuple[str, ...] = ()  # rules now past their soft limit (for alerts)


def window_of(window: Window, now: float, terms: list[Term]) -> tuple[str, float]:
    """(label, reset time) of the window containing ``now`` (UTC)."""
    dt = datetime.fromtimestamp(now, tz=timezone.utc)
    if window == "day":
        start = datetime(dt.year, dt.month, dt.day, tzinfo=timezone.utc)
        return start.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()
    if window == "month":
        days = calendar.monthrange(dt.year, dt.month)[1]
        start = datetime(dt.year, dt.month, 1, tzinfo=timezone.utc)
        return start.strftime("%Y-%m"), (start + timedelta(days=days)).timestamp()
    today = dt.date()
    for term in terms:
        if term.start <= today <= term.end:
            end = datetime(term.end.year, term.end.month, term.end.day, tzinfo=timezone.utc) + timedelta(days=1)
            return f"term-{term.name}", end.timestamp()
    return "between-terms", (dt + timedelta(days=1)).timestamp()  # outside every term: a daily bucket


class _Counters(Protocol):
    def reserve(self, keys: list[str], limits: list[float], amount: float, ttls: list[int]) -> int | None: ...
    def add(self, keys: list[str], amount: float) -> None: ...
    def get(self, key: str) -> float: ...
    def append(self, entry: dict[str, Any]) -> None: ...
    def entries(self) -> list[dict[str, Any]]: ...
    def expire(self, before: float) -> int: ...


class _SQLiteCounters:
    def __init__(self, path: str) -> None:
        self._db = embedded_db.connect(path, timeout_s=10, schema=(
            "CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, amount REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT NOT NULL)"))
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO ledger(entry) VALUES (?)", (json.dumps(entry, separators=(",", ":")),))

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(r[0]) for r in self._db.execute("SELECT entry FROM ledger ORDER BY id")]

    def expire(self, before: float) -> int:
        with self._lock:
            n = self._db.execute("DELETE FROM ledger WHERE json_extract(entry, '$.at') < ?", (before,)).rowcount
            embedded_db.truncate_wal(self._db)
        return n

    def reserve(self, keys: list[str], limits: list[float], amount: float, ttls: list[int]) -> int | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one writer at a time across processes: check-and-add is atomic
            try:
                for i, (key, limit) in enumerate(zip(keys, limits)):
                    if self._get(key) + amount > limit + 1e-12:
                        self._db.execute("ROLLBACK")
                        return i
                for key in keys:
                    self._upsert(key, amount)
                self._db.execute("COMMIT")
                return None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add(self, keys: list[str], amount: float) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for key in keys:
                self._upsert(key, amount)
            self._db.execute("COMMIT")

    def _upsert(self, key: str, amount: float) -> None:
        self._db.execute("INSERT INTO spend(key, amount) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET amount = amount + excluded.amount", (key, amount))

    def _get(self, key: str) -> float:
        row = self._db.execute("SELECT amount FROM spend WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else 0.0

    def get(self, key: str) -> float:
        with self._lock:
            return self._get(key)


_RESERVE_LUA = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('GET', key) or '0')
  if spent + amount > tonumber(ARGV[1 + i]) + 1e-12 then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBYFLOAT', key, amount)
  redis.call('EXPIRE', key, tonumber(ARGV[1 + #KEYS + i]))
end
return 0
"""


class _RedisCounters:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=2)
        self._prefix = prefix
        self._script = self._r.register_script(_RESERVE_LUA)

    def _k(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def reserve(self, keys: list[str], limits: list[float], amount: float, ttls: list[int]) -> int | None:
        failed = int(self._script(keys=[self._k(k) for k in keys], args=[amount, *limits, *ttls]))
        return None if failed == 0 else failed - 1

    def add(self, keys: list[str], amount: float) -> None:
        pipe = self._r.pipeline(transaction=True)
        for key in keys:
            pipe.incrbyfloat(self._k(key), amount)
        pipe.execute()

    def get(self, key: str) -> float:
        return float(self._r.get(self._k(key)) or 0)

    def append(self, entry: dict[str, Any]) -> None:
        self._r.xadd(self._k("ledger"), {"entry": json.dumps(entry, separators=(",", ":"))},
                     maxlen=LEDGER_MAX_ENTRIES, approximate=True)

    def expire(self, before: float) -> int:
        """Stream ids are append times in ms: everything below the cut goes (XTRIM MINID, exact)."""
        return int(self._r.xtrim(self._k("ledger"), minid=f"{int(before * 1000)}-0", approximate=False))

    def entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        last = "-"
        while True:
            rows = self._r.xrange(self._k("ledger"), min=last, max="+", count=1000)
            rows = [r for r in rows if r[0] != (last.encode() if isinstance(last, str) else last)]
            if not rows:
                return out
            out += [json.loads(fields[b"entry"]) for _, fields in rows]
            last = rows[-1][0].decode()


class BudgetLedger:
    """Reserve / settle against every applicable rule; the clock is injected so windows are testable."""

    def __init__(self, config: BudgetConfig, *, clock: Any = time.time) -> None:
        self.config = config
        self._clock = clock
        self._counters: _Counters | None = None

    @property
    def counters(self) -> _Counters:
        if self._counters is None:  # opened lazily: a router without budgets never touches a store
            c = self.config
            self._counters = (_SQLiteCounters(c.sqlite_path) if c.backend == "sqlite"
                              else _RedisCounters(c.redis_url, c.key_prefix))
        return self._counters

    def _applicable(self, subject: Subject) -> list[tuple[BudgetRule, str, float]]:
        now = self._clock()
        out = []
        for rule in self.config.rules:
            who = subject.id_for(rule.scope)
            if who is None or (rule.id != "*" and rule.id != who):
                continue
            label, reset = window_of(rule.window, now, self.config.terms)
            out.append((rule, f"{rule.scope}:{rule.id}:{who}:{rule.window}:{label}", reset))
        return out

    def reserve(self, subject: Subject, amount: float) -> Reservation:
        """Take ``amount`` from every applicable budget, or raise :class:`BudgetExceeded` and take nothing."""
        rules = self._applicable(subject)
        if not rules:
            return Reservation((), 0.0)
        now = self._clock()
        keys = [k for _, k, _ in rules]
        ttls = [max(1, int(reset - now)) + 86_400 for _, _, reset in rules]  # counters outlive their window a day
        failed = self.counters.reserve(keys, [r.limit for r, _, _ in rules], amount, ttls)
        if failed is not None:
            rule, _, reset = rules[failed]
            raise BudgetExceeded(rule, max(1, int(reset - now + 0.999)))
        soft = tuple(r.name for r, k, _ in rules if self.counters.get(k) >= r.soft_limit * r.limit)
        return Reservation(tuple(keys), amount, soft)

    def settle(self, reservation: Reservation, actual: float) -> None:
        """Replace the reserved amount by the actual cost (0 when the call failed)."""
        delta = actual - reservation.amount
        if reservation.keys and abs(delta) > 1e-15:
            self.counters.add(list(reservation.keys), delta)

    def record(self, entry: dict[str, Any]) -> None:
        """Append one interaction to the spend ledger (pseudonymous: no raw learner id is ever passed in)."""
        if self.config.ledger:
            self.counters.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        return self.counters.entries()

    def expire(self, before: float) -> int:
        """Delete ledger entries written before ``before`` (Unix time; retention); returns how many."""
        return self.counters.expire(before)

    def spent(self, subject: Subject) -> dict[str, float]:
        return {rule.name: self.counters.get(key) for rule, key, _ in self._applicable(subject)}
