"""Budget ledger on both real stores (SQLite file, redis-server): atomic reservations under concurrency
(N callers, room for M → exactly M), windows that reset (injected clock), settle refunds, term windows."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.unit.stand_ins import TEST_PSEUDONYMS
from tutor_cluster.config.routing import BudgetConfig
from tutor_cluster.routing.budgets import BudgetExceeded, BudgetLedger, Subject, window_of


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, when: str) -> None:
        self.now = _at(when)

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def config(request, tmp_path: Path, redis_server) -> BudgetConfig:
    base = {"sqlite_path": str(tmp_path / "budgets.db")} if request.param == "sqlite" else {
        "redis_url": redis_server.url, "key_prefix": f"t{tmp_path.name}"}
    return BudgetConfig(backend=request.param, **base, rules=[
        {"scope": "tenant", "id": "*", "window": "day", "limit": 1.0},
        {"scope": "learner", "window": "month", "limit": 0.35, "on_exhaustion": "downgrade", "soft_limit": 0.5},
    ])


def test_concurrent_reservations_never_exceed_the_limit(config: BudgetConfig) -> None:
    ledger = BudgetLedger(config, clock=Clock("2026-12-01T10:00:00"))
    subject = Subject(tenant="acme")

    def attempt(_: int) -> bool:
        try:
            ledger.reserve(subject, 0.1)
            return True
        except BudgetExceeded:
            return False

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(30)))
    assert sum(results) == 10  # room for exactly 10 of 30
    assert ledger.spent(subject) == {"tenant:*:day": pytest.approx(1.0)}


def _reserve_in_process(args: tuple[dict, int]) -> int:
    cfg, n = args
    ledger = BudgetLedger(BudgetConfig(**cfg), clock=lambda: _at("2026-12-01T10:00:00"))
    ok = 0
    for _ in range(n):
        try:
            ledger.reserve(Subject(tenant="multi"), 0.05)
            ok += 1
        except BudgetExceeded:
            pass
    return ok


def test_replicas_in_separate_processes_share_the_counters(config: BudgetConfig) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        got = pool.map(_reserve_in_process, [(config.model_dump(), 15)] * 4)
    assert sum(got) == 20  # 60 attempts, room for 20 across four processes


def test_windows_reset_and_retry_after_is_the_time_to_reset(config: BudgetConfig) -> None:
    clock = Clock("2026-12-01T23:59:00")
    ledger = BudgetLedger(config, clock=clock)
    learner = Subject(tenant="acme", learner=TEST_PSEUDONYMS.pseudonym("acme", "l1"))
    first = ledger.reserve(learner, 0.2)
    assert first.soft == ("learner:*:month",)  # 0.2 >= 0.5 × 0.35: the soft alert fires
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(learner, 0.2)  # the learner's month is at 0.2 of 0.35
    assert info.value.rule.name == "learner:*:month" and info.value.rule.on_exhaustion == "downgrade"
    assert info.value.retry_after_s == 60 * 60 * 24 * 30 + 60  # until 2027-01-01T00:00
    ledger.settle(first, 0.05)  # the call cost less than its worst case: refunded
    ledger.reserve(learner, 0.2)
    clock.now = _at("2027-01-01T00:00:01")  # new day and month: fresh counters
    assert ledger.reserve(learner, 0.3).amount == 0.3
    assert ledger.spent(learner) == {"tenant:*:day": pytest.approx(0.3), "learner:*:month": pytest.approx(0.3)}


def test_failed_reservation_takes_nothing(config: BudgetConfig) -> None:
    ledger = BudgetLedger(config, clock=Clock("2026-12-01T10:00:00"))
    learner = Subject(tenant="t2", learner="p1")
    ledger.reserve(learner, 0.3)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(learner, 0.1)  # the tenant rule has room, the learner rule does not: neither moves
    assert ledger.spent(learner) == {"tenant:*:day": pytest.approx(0.3), "learner:*:month": pytest.approx(0.3)}


def test_term_windows_and_config_errors() -> None:
    cfg = BudgetConfig(rules=[{"scope": "class", "window": "term", "limit": 5}],
                       terms=[{"name": "fall-2026", "start": "2026-09-01", "end": "2026-12-18"}])
    label, reset = window_of("term", _at("2026-12-01T10:00:00"), cfg.terms)
    assert label == "term-fall-2026" and reset == _at("2026-12-19T00:00:00")
    assert window_of("term", _at("2026-12-25T10:00:00"), cfg.terms)[0] == "between-terms"
    with pytest.raises(ValueError, match="terms is empty"):
        BudgetConfig(rules=[{"scope": "class", "window": "term", "limit": 5}])
    with pytest.raises(ValueError):
        BudgetConfig(rules=[{"scope": "school", "limit": 5}])
    assert TEST_PSEUDONYMS.pseudonym("a", "l1") != TEST_PSEUDONYMS.pseudonym("b", "l1")
