"""Rate-limit buckets are shared by gateway replicas: two limiters (two replicas) over one real redis-server, and
over one SQLite file, admit exactly the burst between them — under concurrent requests too."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tutor_cluster.api.ratelimit import RateLimiter
from tutor_cluster.config.limits import Rate, RateLimitConfig


class _Clock:
    def __init__(self) -> None:
        self.now = 2_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def config(request, tmp_path: Path, redis_server) -> RateLimitConfig:
    return RateLimitConfig(per_key=Rate(requests_per_minute=1, burst=20), backend=request.param,
                           sqlite_path=str(tmp_path / "rl.db"), redis_url=redis_server.url,
                           key_prefix=f"rl{id(request)}")


def test_two_replicas_share_one_bucket(config: RateLimitConfig) -> None:
    clock = _Clock()
    replicas = [RateLimiter(config, clock=clock), RateLimiter(config, clock=clock)]
    verdicts = [replicas[i % 2].check("k", "acme") for i in range(24)]
    assert [v.allowed for v in verdicts] == [True] * 20 + [False] * 4
    assert verdicts[-1].retry_after_s == pytest.approx(60.0)  # one a minute
    clock.now += 60.0
    assert replicas[1].check("k", "acme").allowed and not replicas[0].check("k", "acme").allowed
    assert replicas[0].check("other", "acme").allowed  # another key, another bucket


def test_concurrent_requests_never_overdraw(config: RateLimitConfig) -> None:
    clock = _Clock()
    replicas = [RateLimiter(config, clock=clock) for _ in range(2)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for _ in range(10):
            verdict = replicas[i % 2].check("hot", "acme")
            with lock:
                allowed.append(verdict.allowed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 80 and sum(allowed) == 20
