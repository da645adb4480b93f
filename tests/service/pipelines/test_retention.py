"""Retention through its public interface (`tutor-cluster retention sweep`) on real stores — SQLite and a real
redis-server — holding data of every age: what expired goes, what did not stays, counts say which. And the
memory actor never serves what retention no longer allows, sweep or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from tutor_cluster.config.learner import MemoryConfig, MemoryPolicy, StoreConfig
from tutor_cluster.config.privacy import RetentionConfig
from tutor_cluster.config.routing import BudgetConfig
from tutor_cluster.config.settings import SHIPPED_CONFIGS
from tutor_cluster.config.telemetry import EventsConfig
from tutor_cluster.learner.context import LearnerUpdate, TurnSummary, apply_update, new_context
from tutor_cluster.learner.memory import LearnerMemoryActor
from tutor_cluster.learner.stores import open_store
from tutor_cluster.routing.budgets import BudgetLedger
from tutor_cluster.telemetry.events import EventSink, read_events

DAY = 86400.0
NOW = time.time()


def _remember(store, key: str, *, updated: float, said: list[tuple[str, float]]) -> None:
    """A learner whose last update was at ``updated`` and whose recent turns were said at the given times."""
    def fn(cur, upd):
        ctx = apply_update(cur or new_context(key, updated), upd, MemoryPolicy(), now=updated)
        return ctx.model_copy(update={"recent": [TurnSummary(turn_id=f"s{i}", at=at, summary=text)
                                                 for i, (text, at) in enumerate(said)]})
    store.apply(key, LearnerUpdate(turn_id="seed", skill="fractions.add", correct=True), fn)


def _settings_file(tmp: Path, store: StoreConfig, budgets: BudgetConfig) -> Path:
    config = tmp / "settings.yaml"
    config.write_text(json.dumps({
        "catalogue": str(SHIPPED_CONFIGS / "models.yaml"), "exercises": str(SHIPPED_CONFIGS / "exercises.yaml"),
        "learner": {"store": store.model_dump()},
        "telemetry": {"events": {"path": str(tmp / "events")}},
        "routing": {"budgets": budgets.model_dump(exclude_defaults=True)},
        "privacy": {"retention": {"memory_days": 90, "turn_summaries_days": 30, "events_days": 60,
                                  "ledger_days": 365}},
    }))
    return config


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_sweep_deletes_what_expired_and_keeps_the_rest(tmp_path: Path, redis_server, backend: str) -> None:
    prefix = uuid.uuid4().hex[:8]
    store_config = (StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / "learners.db")) if backend == "sqlite"
                    else StoreConfig(backend="redis", redis_url=redis_server.url, key_prefix=prefix))
    budgets = (BudgetConfig(backend="sqlite", sqlite_path=str(tmp_path / "budgets.db")) if backend == "sqlite"
               else BudgetConfig(backend="redis", redis_url=redis_server.url, key_prefix=prefix))
    store = open_store(store_config)
    _remember(store, "acme/idle", updated=NOW - 120 * DAY, said=[("idle words", NOW - 120 * DAY)])
    _remember(store, "acme/busy", updated=NOW - 1 * DAY, said=[("old words", NOW - 45 * DAY),
                                                                ("new words", NOW - 1 * DAY)])
    _remember(store, "acme/fresh", updated=NOW, said=[("fresh words", NOW)])
    sink = EventSink(EventsConfig(path=str(tmp_path / "events"), max_buffer=1000))
    for age in (100, 61, 1, 0):
        sink.add({"at": NOW - age * DAY, "turn_id": f"e{age}", "tenant": "acme", "learner": "k1-x"})
    sink.flush()
    ledger = BudgetLedger(budgets)
    if backend == "sqlite":
        for age in (400, 10):
            ledger.record({"at": NOW - age * DAY, "cost": 0.01})
    else:  # a stream entry's id is when it was appended: one appended 400 days ago, one now
        r = redis.Redis.from_url(redis_server.url)
        r.xadd(f"{prefix}:ledger", {"entry": json.dumps({"at": NOW - 400 * DAY})}, id=f"{int((NOW - 400 * DAY) * 1000)}-0")
        ledger.record({"at": NOW, "cost": 0.01})

    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "retention", "sweep", "--config",
                           str(_settings_file(tmp_path, store_config, budgets))],
                          capture_output=True, text=True, timeout=120, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.split("retention: ", 1)[1])
    assert counts == {"memory_learners_deleted": 1, "memory_contexts_trimmed": 1, "event_rows_deleted": 2,
                      "ledger_entries_deleted": 1}, counts
    assert store.get("acme/idle") is None
    assert [s.summary for s in store.get("acme/busy").recent] == ["new words"]
    assert [s.summary for s in store.get("acme/fresh").recent] == ["fresh words"]
    assert sorted(read_events(tmp_path / "events")["turn_id"]) == ["e0", "e1"]
    assert len(ledger.entries()) == 1
    if backend == "sqlite":
        disk = b"".join(p.read_bytes() for p in tmp_path.glob("learners.db*"))
        assert b"idle words" not in disk and b"old words" not in disk  # gone from the file, not only the table
    again = subprocess.run(proc.args, capture_output=True, text=True, timeout=120, env=os.environ)
    assert json.loads(again.stdout.split("retention: ", 1)[1]) == {
        "memory_learners_deleted": 0, "memory_contexts_trimmed": 0, "event_rows_deleted": 0,
        "ledger_entries_deleted": 0}


def test_memory_never_serves_what_retention_no_longer_allows(tmp_path: Path) -> None:
    """Between sweeps: an expired context reads as absent (and is deleted), old summaries are left out, and a
    new turn starts from what is retained."""
    config = MemoryConfig(store=StoreConfig(backend="sqlite", sqlite_path=str(tmp_path / "m.db")))
    actor = LearnerMemoryActor(config, RetentionConfig(memory_days=90, turn_summaries_days=30))
    store = open_store(config.store)
    _remember(store, "acme/idle", updated=NOW - 120 * DAY, said=[("idle words", NOW - 120 * DAY)])
    _remember(store, "acme/busy", updated=NOW, said=[("old words", NOW - 45 * DAY), ("new words", NOW)])
    assert actor.get("acme/idle") is None and store.get("acme/idle") is None
    assert [s.summary for s in actor.get("acme/busy").recent] == ["new words"]
    _remember(store, "acme/busy2", updated=NOW, said=[("old words", NOW - 45 * DAY), ("new words", NOW)])
    before, after, _ = actor.apply("acme/busy2", LearnerUpdate(turn_id="t9", summary=TurnSummary(
        turn_id="t9", at=NOW, summary="newest")))  # uncached: what the store holds, as retention allows it
    assert [s.summary for s in before.recent] == ["new words"]  # the prompt is built from `before`
    assert [s.summary for s in after.recent] == ["new words", "newest"]
    _, after, _ = actor.apply("acme/busy", LearnerUpdate(turn_id="t9", summary=TurnSummary(turn_id="t9", at=NOW,
                                                                                            summary="newest")))
    assert [s.summary for s in after.recent] == ["new words", "newest"]
    assert [s.summary for s in store.get("acme/busy").recent] == ["new words", "newest"]


def test_bad_settings_are_exit_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nexercises: {SHIPPED_CONFIGS / 'exercises.yaml'}\n"
                      "privacy: {retention: {events_days: -1}}\n")
    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "retention", "sweep", "--config",
                           str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "events_days" in proc.stderr


def test_a_store_that_cannot_be_swept_is_exit_1_naming_it_and_the_others_are_still_swept(tmp_path: Path) -> None:
    sink = EventSink(EventsConfig(path=str(tmp_path / "events"), max_buffer=1000))
    sink.add({"at": NOW - 100 * DAY, "turn_id": "old", "tenant": "acme", "learner": "k1-x"})
    sink.flush()
    down = StoreConfig(backend="redis", redis_url="redis://127.0.0.1:1/0", timeout_s=0.5)  # nothing listens there
    config = _settings_file(tmp_path, down, BudgetConfig(backend="sqlite", sqlite_path=str(tmp_path / "b.db")))
    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "retention", "sweep", "--config",
                           str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "memory:" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert '"event_rows_deleted": 1' in proc.stdout and list((tmp_path / "events").glob("date=*")) == []


def test_each_region_is_swept_by_its_own_retention(tmp_path: Path) -> None:
    """eu keeps memory 30 days and events 10, us 365 and 400: the same ages go in eu and stay in us."""
    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps({
        "catalogue": str(SHIPPED_CONFIGS / "models.yaml"), "exercises": str(SHIPPED_CONFIGS / "exercises.yaml"),
        "knowledge": {"enabled": False},
        "learner": {"store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "learners.db")}},
        "telemetry": {"events": {"path": str(tmp_path / "events")}},
        "regions": {"eu": {"privacy": {"retention": {"memory_days": 30, "events_days": 10}}},
                    "us": {"privacy": {"retention": {"memory_days": 365, "events_days": 400}}}},
    }))
    from tutor_cluster.config.settings import load_settings

    settings = load_settings(config, env={})
    for region in ("eu", "us"):
        mine = settings.for_region(region)
        store = open_store(mine.learner.store)
        _remember(store, "acme/idle", updated=NOW - 60 * DAY, said=[])
        store.close()
        sink = EventSink(mine.telemetry.events.model_copy(update={"max_buffer": 1000}))
        sink.add({"at": NOW - 20 * DAY, "turn_id": f"{region}-old", "tenant": "acme", "learner": "k1-x"})
        sink.add({"at": NOW, "turn_id": f"{region}-new", "tenant": "acme", "learner": "k1-x"})
        sink.flush()
    gone = EventSink(settings.telemetry.events.model_copy(update={"region": "old-region", "max_buffer": 1000}))
    gone.add({"at": NOW - 800 * DAY, "turn_id": "gone-old", "tenant": "acme", "learner": "k1-x"})  # top level: 730
    gone.flush()
    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "retention", "sweep", "--config",
                           str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.removeprefix("retention: "))["event_rows_deleted_other_regions"] == 1
    counts = json.loads(proc.stdout.removeprefix("retention: "))["regions"]
    assert counts["eu"]["memory_learners_deleted"] == 1 and counts["us"]["memory_learners_deleted"] == 0, counts
    assert counts["eu"]["event_rows_deleted"] == 1 and counts["us"]["event_rows_deleted"] == 0, counts
    assert set(read_events(tmp_path / "events")["turn_id"]) == {"eu-new", "us-old", "us-new"}
    for region, kept in (("eu", False), ("us", True)):
        store = open_store(settings.for_region(region).learner.store)
        assert (store.get("acme/idle") is not None) == kept, region
        store.close()


def test_the_sweep_expires_old_audit_records_and_the_log_still_verifies(tmp_path: Path) -> None:
    from tutor_cluster.audit.log import AuditStore

    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps({
        "catalogue": str(SHIPPED_CONFIGS / "models.yaml"), "exercises": str(SHIPPED_CONFIGS / "exercises.yaml"),
        "learner": {"store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "learners.db")}},
        "telemetry": {"events": {"path": str(tmp_path / "events")}},
        "privacy": {"audit_sqlite_path": str(tmp_path / "audit.db"), "retention": {"audit_days": 400}},
    }))
    store = AuditStore(tmp_path / "audit.db")
    for age in (500, 450, 10):
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(NOW - age * DAY))
        store.append({"at": at, "actor": "k", "role": "teacher", "tenant": "acme", "action": "read",
                      "resource": "x", "subject": f"k1-{age}", "purpose": "instruction", "route": "r"})
    store.close()
    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "retention", "sweep", "--config",
                           str(config)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout.removeprefix("retention: "))["audit_records_deleted"] == 2
    verify = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "audit", "verify", "--config",
                             str(config)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "1 records intact after 2 expired" in verify.stdout, verify.stderr
