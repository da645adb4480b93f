"""Every Redis-backed store of ours against Redis as production should run it: TLS only, with a password. They
all take one URL form, ``rediss://:PASSWORD@HOST:PORT/DB?ssl_ca_certs=/path/ca.pem`` (redis-py's), so TLS and
auth need no setting of their own; a wrong password or a plaintext URL is refused, and no error carries the
password."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.conftest import _tls_files
from tests.unit.stand_ins import TEST_KEKS
from tutor_cluster.access.relations import RedisRelations
from tutor_cluster.api.ratelimit import Bucket, _RedisStore
from tutor_cluster.audit.log import AuditLog
from tutor_cluster.audit.redis_store import RedisAuditStore
from tutor_cluster.config.learner import MemoryPolicy
from tutor_cluster.config.limits import Rate
from tutor_cluster.errors import Unavailable
from tutor_cluster.identity import Principal
from tutor_cluster.learner.context import LearnerUpdate, apply_update, new_context
from tutor_cluster.learner.stores import RedisStore, StoreUnavailable
from tutor_cluster.routing.budgets import _RedisCounters
from tutor_cluster.vault.redis_store import RedisVault

#: What a store raises when Redis refuses it: redis-py's errors, or ours wrapping them.
REFUSED = (redis.RedisError, StoreUnavailable, Unavailable)
PROFILE = {"display_name": "Quillon Tessaract", "email": "q.tessaract@example.org", "age_band": "16_17"}
TEACHER = Principal(key_id="t-key", tenant="acme", role="teacher", scopes=frozenset({"tutor"}))


def _update(store: RedisStore, learner: str, turn: str):  # noqa: ANN202 - Applied
    policy = MemoryPolicy()
    return store.apply(learner, LearnerUpdate(turn_id=turn, skill="fractions.add", correct=True),
                       lambda cur, upd: apply_update(cur or new_context(learner), upd, policy))


def test_every_redis_store_works_over_tls_with_a_password(redis_tls_server) -> None:
    url = redis_tls_server.url
    assert url.startswith("rediss://:") and "ssl_ca_certs=" in url

    memory = RedisStore(url, prefix="sec")
    _, ctx, applied = _update(memory, "acme/ana", "t1")
    assert applied and memory.get("acme/ana") == ctx

    vault = RedisVault(url, TEST_KEKS, prefix="sec-vault")
    learner, _, created = vault.register("acme", "eu", PROFILE)
    assert created and vault.profile(vault.entry("acme", learner)) == PROFILE

    audit = RedisAuditStore(url, prefix="sec-audit")
    asyncio.run(AuditLog(audit).record(TEACHER, learner, action="read", resource="learner memory", route="r"))
    assert audit.exists() and len(list(audit.snapshot()[1])) == 1

    relations = RedisRelations(url, "sec")
    relations.add("acme", "class", "c1", learner)
    assert relations.members("acme", "class", "c1") == {learner}

    limits = _RedisStore(url, "sec-rl")
    assert limits.take([Bucket("k", Rate(requests_per_minute=60, burst=1))], time.time()).allowed

    budgets = _RedisCounters(url, "sec-budget")
    budgets.add(["class:c1"], 0.25)
    assert budgets.get("class:c1") == pytest.approx(0.25)


def _stores(url: str) -> dict[str, Callable[[], Any]]:
    """One call per Redis-backed store, each opening its own client from ``url``."""
    return {
        "learner memory": lambda: RedisStore(url, prefix="sec", timeout_s=2).get("acme/ana"),
        "vault": lambda: RedisVault(url, TEST_KEKS, prefix="sec-vault").entry("acme", "lrn_eu_x"),
        "audit log": lambda: RedisAuditStore(url, prefix="sec-audit").exists(),
        "relations": lambda: RedisRelations(url, "sec").members("acme", "class", "c1"),
        "rate limits": lambda: _RedisStore(url, "sec-rl").take([Bucket("k", Rate(requests_per_minute=60))],
                                                                time.time()),
        "budgets": lambda: _RedisCounters(url, "sec-budget").get("class:c1"),
    }


@pytest.mark.parametrize("change", ["password", "plaintext", "unknown CA"])
def test_a_wrong_password_plaintext_or_unknown_ca_is_refused_without_the_password(redis_tls_server, tmp_path,
                                                                                  change) -> None:
    url = redis_tls_server.url
    if change == "password":
        url = url.replace(redis_tls_server.password, "not-the-password")
    elif change == "plaintext":
        url = url.replace("rediss://", "redis://").split("?")[0]
    else:  # a server certificate this CA did not sign: the client must not talk to it
        url = url.split("?")[0] + f"?ssl_ca_certs={_tls_files(tmp_path)}"
    for store, call in _stores(url).items():
        with pytest.raises(REFUSED) as refused:  # each store's own error type
            call()
        assert redis_tls_server.password not in str(refused.value), store
        assert "not-the-password" not in str(refused.value), store
