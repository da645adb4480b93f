"""Learner memory through real Ray actors, including fault injection: actors killed while thousands of
updates run, redis-server killed -9 and restarted from its AOF. Invariant: every acknowledged update is in
the store exactly once."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid

import pytest
import ray

from tutor_cluster.learner.context import LearnerUpdate
from tutor_cluster.learner.memory import HashRing, LearnerMemory, MemoryConfig
from tutor_cluster.learner.stores import StoreConfig, StoreUnavailable, open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local():
    from tutor_cluster.app.local import apply_ray_env

    apply_ray_env()
    ray.init(num_cpus=8, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=256 * 1024 * 1024, namespace="learner-tests", log_to_driver=False)
    yield
    ray.shutdown()


def _memory(store: StoreConfig, actors: int = 4) -> LearnerMemory:
    cfg = MemoryConfig(actors=actors, store=store, name_prefix=f"mem-{uuid.uuid4().hex[:8]}", cache_capacity=64)
    return LearnerMemory(cfg, namespace="learner-tests")


def _stores(tmp_path, redis_server) -> dict[str, StoreConfig]:
    return {
        "sqlite": StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / "learners.db"), timeout_s=10),
        "redis": StoreConfig(backend="redis", redis_url=redis_server.url, key_prefix=uuid.uuid4().hex[:8]),
    }


def _drive(memory: LearnerMemory, updates: list[tuple[str, LearnerUpdate]], in_flight: int = 64) -> int:
    """Send every update until it is acknowledged; a failed call is resent with the same turn id, as a
    client would. Bounded in time. Returns how many sends failed (and were resent)."""
    deadline = time.monotonic() + 300
    pending = list(updates)
    failures = 0
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} updates never acknowledged")
        batch, pending = pending[:in_flight], pending[in_flight:]
        refs = [(memory.apply(l, u), (l, u)) for l, u in batch]
        for ref, item in refs:
            try:
                ray.get(ref, timeout=60)
            except (StoreUnavailable, ray.exceptions.RayError):
                failures += 1
                pending.append(item)
                time.sleep(0.05)
    return failures


def _check_exactly_once(store_cfg: StoreConfig, sent: dict[str, list[str]]) -> None:
    store = open_store(store_cfg)
    try:
        for learner, turns in sent.items():
            ctx = store.get(learner)
            assert ctx is not None, f"{learner}: acknowledged updates lost"
            assert store.applied_turns(learner) == set(turns), f"{learner}: applied set differs"
            assert ctx.skills["s"].attempts == len(turns) == ctx.version, f"{learner}: applied twice or lost"
    finally:
        store.close()


def test_hash_ring_is_stable_and_spreads() -> None:
    ring = HashRing(4)
    owners = [ring.owner(f"learner-{i}") for i in range(4000)]
    assert owners == [HashRing(4).owner(f"learner-{i}") for i in range(4000)]
    counts = [owners.count(i) for i in range(4)]
    assert min(counts) > 600, counts
    moved = sum(a != b for a, b in zip(owners, (HashRing(5).owner(f"learner-{i}") for i in range(4000))))
    assert moved < 4000 * 0.35  # adding an actor remaps about 1/5 of learners, not all


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_concurrent_updates_one_and_many_learners(ray_local, tmp_path, redis_server, backend) -> None:
    cfg = _stores(tmp_path, redis_server)[backend]
    memory = _memory(cfg)
    learners = ["hot"] * 200 + [f"l{i}" for i in range(300)]  # one learner hammered, many touched
    random.Random(1).shuffle(learners)
    sent: dict[str, list[str]] = {}
    updates = []
    for i, learner in enumerate(learners):
        turn = f"t{i}"
        sent.setdefault(learner, []).append(turn)
        updates.append((learner, LearnerUpdate(turn_id=turn, skill="s", correct=i % 2 == 0)))
    _drive(memory, updates, in_flight=100)
    _check_exactly_once(cfg, sent)
    hot = ray.get(memory.get("hot"))
    assert hot.skills["s"].attempts == 200  # served from the owning actor's cache


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_killing_actors_under_load_loses_nothing_and_applies_nothing_twice(ray_local, tmp_path, redis_server,
                                                                           backend) -> None:
    cfg = _stores(tmp_path, redis_server)[backend]
    memory = _memory(cfg)
    n = 5000
    sent: dict[str, list[str]] = {}
    updates = []
    for i in range(n):
        learner = f"k{i % 97}"
        sent.setdefault(learner, []).append(f"u{i}")
        updates.append((learner, LearnerUpdate(turn_id=f"u{i}", skill="s", correct=i % 3 == 0)))
    stop = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        rng = random.Random(7)
        while not stop.wait(0.4):
            actor = rng.choice(memory.actors)
            if backend == "sqlite":  # kill -9 the process holding the embedded store
                try:
                    pid = ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=10)
                    os.kill(pid, signal.SIGKILL)
                except (ray.exceptions.RayError, ProcessLookupError):
                    continue
            else:
                ray.kill(actor, no_restart=False)
            kills += 1

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        _drive(memory, updates, in_flight=64)
    finally:
        stop.set()
        thread.join()
    assert kills >= 3, "the drill did not kill enough actors to mean anything"
    _check_exactly_once(cfg, sent)


def test_redis_killed_9_mid_load_and_restarted_from_aof_loses_nothing(ray_local, tmp_path, redis_server) -> None:
    cfg = _stores(tmp_path, redis_server)["redis"]
    memory = _memory(cfg)
    sent: dict[str, list[str]] = {}
    updates = []
    for i in range(3000):
        learner = f"r{i % 50}"
        sent.setdefault(learner, []).append(f"v{i}")
        updates.append((learner, LearnerUpdate(turn_id=f"v{i}", skill="s", correct=True)))

    def outage() -> None:
        redis_server.kill9()  # mid-load: a third of the updates are already acknowledged
        time.sleep(1.0)
        redis_server.start()  # replays the AOF

    _drive(memory, updates[:1000], in_flight=32)
    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    failures = _drive(memory, updates[1000:], in_flight=32)
    thread.join()
    assert failures > 0, "the outage did not hit any write: the drill proved nothing"
    _check_exactly_once(cfg, sent)


def test_cached_reads_survive_a_store_outage(ray_local, tmp_path, redis_server) -> None:
    cfg = _stores(tmp_path, redis_server)["redis"]
    memory = _memory(cfg, actors=1)
    ray.get(memory.apply("c1", LearnerUpdate(turn_id="a", skill="s", correct=True)))
    redis_server.kill9()
    try:
        assert ray.get(memory.get("c1")).skills["s"].attempts == 1  # from the actor's cache
        with pytest.raises(StoreUnavailable):
            ray.get(memory.apply("c1", LearnerUpdate(turn_id="b", skill="s", correct=True)), timeout=30)
        with pytest.raises(StoreUnavailable):
            ray.get(memory.get("never-cached"), timeout=30)
    finally:
        redis_server.start()
    _, ctx, applied = ray.get(memory.apply("c1", LearnerUpdate(turn_id="b", skill="s", correct=True)))
    assert applied and ctx.skills["s"].attempts == 2  # the refused update was not half-written
