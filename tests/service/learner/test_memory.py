"""Learner memory through real Ray actors, including fault injection: actors killed while thousands of
updates run, redis-server killed -9 and restarted from its AOF. Invariant: every acknowledged update is in
the store exactly once."""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import ray

from tests.service import local_ray
from tutor_cluster.config.learner import MemoryConfig, StoreConfig
from tutor_cluster.learner.context import LearnerUpdate
from tutor_cluster.learner.memory import HashRing, LearnerMemory
from tutor_cluster.learner.stores import StoreUnavailable, open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local():
    with local_ray(num_cpus=8, namespace="learner-tests"):
        yield


def _memory(store: StoreConfig, actors: int = 4) -> LearnerMemory:
    cfg = MemoryConfig(actors=actors, store=store, name_prefix=f"mem-{uuid.uuid4().hex[:8]}", cache_capacity=64)
    return LearnerMemory(cfg, namespace="learner-tests")


def _stores(tmp_path, redis_server) -> dict[str, StoreConfig]:
    return {
        "sqlite": StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / "learners.db"), timeout_s=10),
        "redis": StoreConfig(backend="redis", redis_url=redis_server.url, key_prefix=uuid.uuid4().hex[:8]),
    }


@dataclass
class Drive:
    """What a load run saw: acknowledged updates, failed sends (each resent with the same turn id), seconds."""

    acked: int = 0
    failures: int = 0
    seconds: float = 0.0


def _drive(memory: LearnerMemory, updates: Iterable[tuple[str, LearnerUpdate]], in_flight: int = 64,
           stall_s: float = 120.0, drive: Drive | None = None) -> Drive:
    """Send every update until it is acknowledged, ``in_flight`` at a time; a failed call is resent with the same
    turn id, as a client would. Fails only if *nothing* is acknowledged for ``stall_s`` seconds (a liveness
    failure), never because the machine is slow overall."""
    drive = drive or Drive()
    source = iter(updates)
    retry: deque[tuple[str, LearnerUpdate]] = deque()
    pending: dict[Any, tuple[str, LearnerUpdate]] = {}
    exhausted = False
    start = last_progress = time.monotonic()
    while True:
        while len(pending) < in_flight:
            if retry:
                item = retry.popleft()
            elif not exhausted:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    continue
            else:
                break
            pending[memory.apply(*item)] = item
        if not pending:
            break
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            item = pending.pop(ref)
            try:
                ray.get(ref)
            except (StoreUnavailable, ray.exceptions.RayError):
                drive.failures += 1
                retry.append(item)
                time.sleep(0.05)
                continue
            drive.acked += 1
            last_progress = time.monotonic()
        if time.monotonic() - last_progress > stall_s:
            raise TimeoutError(f"no update acknowledged for {stall_s:.0f} s; {len(pending) + len(retry)} outstanding")
    drive.seconds += time.monotonic() - start
    return drive


def _pid(actor: Any, timeout: float) -> int:
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=timeout)


def _crash_and_wait(actor: Any, how: str, timeout: float) -> float:
    """Crash one memory actor (``ray.kill`` or SIGKILL of its process) and return the seconds until a *new*
    process of it has served a call: the time the tier needs to recover from one crash."""
    old = _pid(actor, timeout)
    start = time.monotonic()
    if how == "sigkill":
        os.kill(old, signal.SIGKILL)
    else:
        ray.kill(actor, no_restart=False)
    while _pid(actor, timeout) == old:
        time.sleep(0.01)
    return time.monotonic() - start


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


def test_changed_settings_reach_new_actors_and_the_old_ones_retire(ray_local, tmp_path) -> None:
    """A deploy with other memory settings must not reuse actors built with the old ones (they would keep
    writing to the old store, silently); the same settings find the same actors (and their caches)."""
    def config(db: str, capacity: int = 64) -> MemoryConfig:
        return MemoryConfig(actors=2, name_prefix="versioned", cache_capacity=capacity,
                            store=StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / db), timeout_s=10))

    old = LearnerMemory(config("a.db"), namespace="learner-tests", retire_stale=True)
    ray.get(old.apply("v1", LearnerUpdate(turn_id="t1", skill="s", correct=True)))
    same = LearnerMemory(config("a.db"), namespace="learner-tests", retire_stale=True)
    assert [same.actor_name(i) for i in range(2)] == [old.actor_name(i) for i in range(2)]
    assert ray.get(same.get("v1")).version == 1

    new = LearnerMemory(config("b.db", capacity=32), namespace="learner-tests", retire_stale=True)
    assert new.fingerprint != old.fingerprint
    _, after, applied = ray.get(new.apply("v1", LearnerUpdate(turn_id="t2", skill="s", correct=True)))
    assert applied and after.version == 1  # the new store: nothing of the old one
    assert ray.get(new.actor_for("v1").stats.remote())["applied"] == 1
    for actor in old.actors:  # retired, not restarted
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.ping.remote(), timeout=60)
    for db, version in (("a.db", 1), ("b.db", 1)):
        store = open_store(StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / db)))
        try:
            assert store.get("v1").version == version and len(store.applied_turns("v1")) == 1
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


#: Crashes every churn drill must survive, and updates acknowledged between two crashes (progress under churn).
MIN_CRASHES = 5
ACKS_BETWEEN_CRASHES = 50
#: Upper bound of a drill's load: it stops sending once it has enough crashes, or here at the latest.
MAX_UPDATES = 40_000


@pytest.mark.drill
@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_killing_actors_under_load_loses_nothing_and_applies_nothing_twice(ray_local, tmp_path, redis_server,
                                                                           backend, drill_report) -> None:
    """Liveness under churn as a property: actors crash one after another while updates flow, each next crash
    only once the previous actor is back (a new process served a call) and the tier acknowledged more updates.
    Nothing acknowledged is lost or applied twice; the tier keeps making progress throughout."""
    cfg = _stores(tmp_path, redis_server)[backend]
    memory = _memory(cfg)
    how = "sigkill" if backend == "sqlite" else "ray.kill"  # sqlite: kill -9 the process holding the store
    rng = random.Random(7)
    # Baselines on this machine, now: one crash-to-recovery, and throughput without crashes.
    ray.get([a.ping.remote() for a in memory.actors])
    restart_baseline = _crash_and_wait(memory.actors[0], how, timeout=600)
    stall_s = max(60.0, 20 * restart_baseline)
    sent: dict[str, list[str]] = {}
    counter = iter(range(MAX_UPDATES))
    crashes: list[float] = []
    churning = threading.Event()
    done = threading.Event()

    def updates(limit: int | None = None) -> Iterator[tuple[str, LearnerUpdate]]:
        for i in counter:
            if limit is not None and i >= limit or limit is None and len(crashes) >= MIN_CRASHES:
                return
            learner, turn = f"k{i % 97}", f"u{i}"
            sent.setdefault(learner, []).append(turn)
            yield learner, LearnerUpdate(turn_id=turn, skill="s", correct=i % 3 == 0)

    quiet = _drive(memory, updates(limit=500), stall_s=stall_s)
    churn = Drive()
    errors: list[BaseException] = []

    def crasher() -> None:
        try:
            churning.set()
            while not done.is_set() and len(crashes) < MIN_CRASHES:
                target = churn.acked + ACKS_BETWEEN_CRASHES
                while churn.acked < target and not done.is_set():
                    time.sleep(0.01)
                if done.is_set():
                    return
                crashes.append(_crash_and_wait(rng.choice(memory.actors), how, timeout=stall_s))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=crasher, daemon=True)
    thread.start()
    churning.wait()
    try:
        _drive(memory, updates(), stall_s=stall_s, drive=churn)
    finally:
        done.set()
        thread.join(timeout=stall_s)
    assert not errors, errors
    assert len(crashes) >= MIN_CRASHES, f"only {len(crashes)} crashes before the load bound: the drill proved nothing"
    _check_exactly_once(cfg, sent)
    drill_report(
        f"learner memory churn ({backend}, {how}): {len(crashes)} crashes, recovery p50 "
        f"{statistics.median(crashes):.2f} s / max {max(crashes):.2f} s (baseline {restart_baseline:.2f} s); "
        f"{churn.acked / churn.seconds:.0f} updates/s during churn vs {quiet.acked / quiet.seconds:.0f} without; "
        f"{churn.failures} resends; {sum(len(t) for t in sent.values())} updates, 0 lost, 0 applied twice"
    )


@pytest.mark.drill
def test_redis_killed_9_mid_load_and_restarted_from_aof_loses_nothing(ray_local, tmp_path, redis_server,
                                                                     drill_report) -> None:
    """redis-server is killed -9 once a third of the load is acknowledged, and restarted (replaying its AOF) only
    after the tier has refused writes: paced on what the system does, not on the clock."""
    cfg = _stores(tmp_path, redis_server)["redis"]
    memory = _memory(cfg)
    sent: dict[str, list[str]] = {}
    updates = []
    for i in range(3000):
        learner = f"r{i % 50}"
        sent.setdefault(learner, []).append(f"v{i}")
        updates.append((learner, LearnerUpdate(turn_id=f"v{i}", skill="s", correct=True)))
    _drive(memory, updates[:1000], in_flight=32)
    phase = Drive()
    errors: list[BaseException] = []
    done = threading.Event()

    def outage() -> None:
        try:
            while phase.acked < 50 and not done.is_set():  # mid-load: writes are flowing when the store dies
                time.sleep(0.005)
            redis_server.kill9()
            while phase.failures == 0 and not done.is_set():  # the outage has hit a write
                time.sleep(0.01)
            redis_server.start()  # replays the AOF
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    try:
        _drive(memory, updates[1000:], in_flight=32, drive=phase)
    finally:
        done.set()
        thread.join(timeout=60)
        if redis_server.proc is None:  # the drill failed half-way: later tests still get their server
            redis_server.start()
    assert not errors, errors
    assert phase.failures > 0, "the outage did not hit any write: the drill proved nothing"
    _check_exactly_once(cfg, sent)
    drill_report(f"redis killed -9 mid-load: {phase.failures} refused writes resent, 3000 updates, 0 lost, "
                 f"0 applied twice")


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
