"""The same suite against both stores: SQLite (WAL) and a real redis-server."""

from __future__ import annotations

import threading

import pytest

from tutor_cluster.config.learner import MemoryPolicy
from tutor_cluster.identity import learner_key
from tutor_cluster.learner.context import LearnerUpdate, apply_update, new_context
from tutor_cluster.learner.stores import RedisStore, SQLiteStore, StoreUnavailable

POLICY = MemoryPolicy()


def _fn(learner_id):
    return lambda cur, upd: apply_update(cur or new_context(learner_id), upd, POLICY)


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path, redis_server):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "learners.db")
    else:
        s = RedisStore(redis_server.url, prefix=f"t{id(request)}")
    yield s
    s.close()


def test_apply_is_versioned_and_idempotent(store) -> None:
    before, ctx, applied = store.apply("ana", LearnerUpdate(turn_id="t1", skill="fractions.add", correct=True),
                                       _fn("ana"))
    assert applied and before is None and ctx.version == 1 and ctx.skills["fractions.add"].attempts == 1
    _, again, applied = store.apply("ana", LearnerUpdate(turn_id="t1", skill="fractions.add", correct=True),
                                    _fn("ana"))
    assert not applied and again == ctx
    before2, ctx2, applied = store.apply("ana", LearnerUpdate(turn_id="t2", skill="fractions.add", correct=False),
                                         _fn("ana"))
    assert applied and before2 == ctx and ctx2.version == 2 and ctx2.skills["fractions.add"].attempts == 2
    assert store.get("ana") == ctx2
    assert store.get("nobody") is None


def test_concurrent_updates_equal_sequential_application(store) -> None:
    learners = ["l0", "l1", "l2"]
    acked: dict[str, list[str]] = {l: [] for l in learners}
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(40):
            learner = learners[(worker + i) % len(learners)]
            turn = f"w{worker}-{i}"
            _, ctx, applied = store.apply(learner, LearnerUpdate(turn_id=turn, skill="s", correct=i % 3 != 0),
                                       _fn(learner))
            assert applied
            with lock:
                acked[learner].append(turn)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for learner in learners:
        ctx = store.get(learner)
        assert ctx.version == len(acked[learner]) == ctx.skills["s"].attempts
        expected_correct = sum(1 for t in acked[learner] if int(t.split("-")[1]) % 3 != 0)
        assert ctx.skills["s"].correct == expected_correct


def test_unreachable_redis_fails_fast_with_store_unavailable() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", timeout_s=0.3)
    with pytest.raises(StoreUnavailable):
        store.apply("x", LearnerUpdate(turn_id="t"), _fn("x"))
    with pytest.raises(StoreUnavailable):
        store.get("x")
    assert store.ping() is False


def test_tenant_keys_keep_the_same_learner_id_apart(store) -> None:
    a, b = learner_key("acme", "student-1"), learner_key("globex", "student-1")
    store.apply(a, LearnerUpdate(turn_id="t1", skill="s", correct=True), _fn(a))
    store.apply(a, LearnerUpdate(turn_id="t2", skill="s", correct=True), _fn(a))
    _, other, applied = store.apply(b, LearnerUpdate(turn_id="t1", skill="s", correct=False), _fn(b))
    assert applied and other.version == 1 and other.tenant == "globex" and other.learner_id == "student-1"
    assert store.get(a).version == 2 and store.get(a).tenant == "acme" and store.get(b).skills["s"].correct == 0
    assert store.legacy_keys() == []


def test_records_from_before_tenancy_are_found_and_moved_under_their_tenant(store) -> None:
    store.apply("old-1", LearnerUpdate(turn_id="t1", skill="s", correct=True), _fn("old-1"))  # no tenant in the key
    store.apply("old-2", LearnerUpdate(turn_id="t1", skill="s", correct=False), _fn("old-2"))
    current = learner_key("acme", "new-1")
    store.apply(current, LearnerUpdate(turn_id="t1"), _fn(current))
    assert sorted(store.legacy_keys()) == ["old-1", "old-2"]
    assert store.migrate_legacy("acme") == 2
    assert store.legacy_keys() == [] and store.get("old-1") is None
    moved = store.get(learner_key("acme", "old-1"))
    assert moved.tenant == "acme" and moved.learner_id == "old-1" and moved.skills["s"].correct == 1
    assert store.applied_turns(learner_key("acme", "old-1")) == {"t1"}  # the idempotency record moved with it
    _, again, applied = store.apply(learner_key("acme", "old-1"), LearnerUpdate(turn_id="t1", skill="s", correct=True),
                                    _fn(learner_key("acme", "old-1")))
    assert not applied and again.version == moved.version
    assert store.migrate_legacy("acme") == 0  # a rerun finds nothing left


def test_a_tenant_quota_refuses_the_learner_one_too_many(store) -> None:
    from tutor_cluster.learner.stores import QuotaExceeded

    a, b, c = (learner_key("acme", n) for n in ("a", "b", "c"))
    for key in (a, b):
        store.apply(key, LearnerUpdate(turn_id="t1"), _fn(key), quota=2)
    with pytest.raises(QuotaExceeded):
        store.apply(c, LearnerUpdate(turn_id="t1"), _fn(c), quota=2)
    assert store.get(c) is None  # nothing half-written
    _, again, applied = store.apply(a, LearnerUpdate(turn_id="t2"), _fn(a), quota=2)  # existing learners go on
    assert applied and again.version == 2
    other = learner_key("globex", "c")
    assert store.apply(other, LearnerUpdate(turn_id="t1"), _fn(other), quota=2).applied  # per tenant
