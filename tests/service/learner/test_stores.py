"""The same suite against both stores: SQLite (WAL) and a real redis-server."""

from __future__ import annotations

import threading

import pytest

from tutor_cluster.config.learner import MemoryPolicy
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
