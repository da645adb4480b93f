"""Rate limits: the GCRA rule itself (with a controlled clock), and through the real FastAPI app in-process over
the SQLite bucket store (tests/service/api/test_ratelimit_redis.py: the same over a real Redis, two replicas)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.stand_ins import TEST_PSEUDONYMS
from tutor_cluster.api.app import build_fastapi, build_services
from tutor_cluster.api.auth import hash_key
from tutor_cluster.api.ratelimit import Bucket, RateLimiter, decide
from tutor_cluster.config.auth import ApiKey
from tutor_cluster.config.limits import Rate, RateLimitConfig
from tutor_cluster.config.settings import load_settings


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    bucket = Bucket("k", Rate(requests_per_minute=60, burst=3))  # one a second, three at once
    tat, now = None, 100.0
    seen = []
    for _ in range(4):
        verdict, (tat,) = decide([bucket], [tat], now)
        seen.append((verdict.allowed, verdict.remaining))
    assert seen == [(True, 2), (True, 1), (True, 0), (False, 0)]
    assert verdict.retry_after_s == pytest.approx(1.0) and verdict.limit == 60
    verdict, (tat,) = decide([bucket], [tat], now + 1.0)  # one interval later: one more fits
    assert verdict.allowed and verdict.remaining == 0


def test_buckets_are_all_or_nothing() -> None:
    key, tenant = Bucket("key", Rate(requests_per_minute=600, burst=10)), Bucket("tenant", Rate(requests_per_minute=60, burst=1))
    verdict, tats = decide([key, tenant], [None, None], 50.0)
    assert verdict.allowed
    refused, after = decide([key, tenant], tats, 50.0)
    assert not refused.allowed and after == tats  # the key's bucket was not charged for a refused request
    assert refused.limit == 60  # the headers speak of the bucket that refused


def _app(tmp_path: Path, **limits) -> tuple[TestClient, dict[str, str]]:
    settings = load_settings(None)
    keys = {"a": "tc-key-a", "b": "tc-key-b", "c": "tc-key-c", "vip": "tc-key-vip"}
    api_keys = [ApiKey(id="a", sha256=hash_key(keys["a"]), tenant="acme", scopes=["chat"]),
                ApiKey(id="b", sha256=hash_key(keys["b"]), tenant="acme", scopes=["chat"]),
                ApiKey(id="c", sha256=hash_key(keys["c"]), tenant="globex", scopes=["chat"]),
                ApiKey(id="vip", sha256=hash_key(keys["vip"]), tenant="globex", scopes=["chat"],
                       rate=Rate(requests_per_minute=6000, burst=50))]
    limits = RateLimitConfig(sqlite_path=str(tmp_path / "rl.db"), **limits)
    settings = settings.model_copy(update={"limits": limits, "auth": settings.auth.model_copy(update={"api_keys": api_keys})})
    return TestClient(build_fastapi(build_services(settings, None, None, None, pseudonyms=TEST_PSEUDONYMS))), keys


def _get(client: TestClient, key: str):
    return client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})


def test_over_the_limit_is_429_with_retry_after_and_other_keys_are_unaffected(tmp_path: Path) -> None:
    client, keys = _app(tmp_path, per_key=Rate(requests_per_minute=2, burst=3))
    with client:
        answers = [_get(client, keys["a"]) for _ in range(6)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
        refused = answers[3]
        assert 1 <= int(refused.headers["retry-after"]) <= 30 and refused.headers["x-ratelimit-limit"] == "2"
        error = refused.json()["error"]  # /v1/models is an OpenAI route: OpenAI's shape and type
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limited"
        assert _get(client, keys["b"]).status_code == 200  # its own bucket
        vip = [_get(client, keys["vip"]).status_code for _ in range(10)]
        assert vip == [200] * 10  # a key's own rate overrides limits.per_key


def test_a_tenant_limit_spans_its_keys(tmp_path: Path) -> None:
    client, keys = _app(tmp_path, per_tenant=Rate(requests_per_minute=1, burst=2))
    with client:
        assert [_get(client, keys[k]).status_code for k in ("a", "b", "a")] == [200, 200, 429]
        assert _get(client, keys["c"]).status_code == 200  # another tenant


def test_without_limits_nothing_is_counted(tmp_path: Path) -> None:
    assert not RateLimiter(RateLimitConfig(sqlite_path=str(tmp_path / "rl.db"))).enabled
    client, keys = _app(tmp_path)
    with client:
        for _ in range(30):
            response = _get(client, keys["a"])  # no rate for this key or its tenant (only 'vip' has one)
            assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers


def test_an_unreachable_bucket_store_lets_requests_through(tmp_path: Path) -> None:
    limiter = RateLimiter(RateLimitConfig(per_key=Rate(requests_per_minute=1, burst=1), backend="redis",
                                          redis_url="redis://127.0.0.1:1/0"), clock=_Clock())
    assert limiter.check("a", "acme") is None  # fail open (logged): limits must not take the service down
