"""The learned policy (threshold calibrated to a target core share), `routing train`, and the spend ledger's
Parquet export (round trip, then training from it)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from tutor_cluster.config.routing import BudgetConfig, RoutingConfig
from tutor_cluster.config.settings import SHIPPED_CONFIGS, load_settings
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing.budgets import BudgetLedger
from tutor_cluster.routing.decisions import LearnerFeatures
from tutor_cluster.routing.learned import fit, read_outcomes
from tutor_cluster.routing.policies import build_policy


def _outcomes(n: int, seed: int) -> list[dict]:
    """Logged cascade outcomes: the small model tends to fail on complex turns and struggling learners."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        f = {"intent": rng.choice(["question", "answer_attempt", "hint_request", "off_topic"]), "complexity": rng.random(),
             "check": rng.choice([None, "True", "False"]), "mastery": rng.choice([None, rng.random()]),
             "attempts": rng.randint(0, 8), "misconceptions": rng.randint(0, 4)}
        hard = f["complexity"] * 2 + 0.4 * f["misconceptions"] - (f["mastery"] or 0.5)
        rows.append({"features": f, "small_ok": hard + rng.gauss(0, 0.3) < 1.3})
    return rows


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_threshold_is_calibrated_to_the_target_core_share() -> None:
    train, held_out = _outcomes(3000, 1), _outcomes(2000, 2)
    model = fit([(r["features"], r["small_ok"]) for r in train], target_core_share=0.3)
    assert model.metrics["core_share"] == pytest.approx(0.3, abs=0.01) and model.metrics["auc"] > 0.85
    core = [model.p_small_ok(r["features"]) < model.threshold for r in held_out]
    assert sum(core) / len(core) == pytest.approx(0.3, abs=0.04)
    # it sends to core the turns where the small model failed: the small model's success rate is far higher
    # on the turns it keeps than on those it escalates
    rate = lambda rows: sum(rows) / len(rows)  # noqa: E731
    kept = rate([r["small_ok"] for r, c in zip(held_out, core) if not c])
    sent = rate([r["small_ok"] for r, c in zip(held_out, core) if c])
    assert kept > 0.65 and sent < 0.05


def test_train_cli_and_policy_from_config(tmp_path: Path) -> None:
    log = tmp_path / "outcomes.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in _outcomes(1500, 3)) + "\n" + json.dumps(
        {"features": {"complexity": 0.2}, "small_ok": None}) + "\n")
    out = tmp_path / "router.json"
    r = _cli("routing", "train", str(log), "--target-core-share", "0.25", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "core share 25%" in r.stdout and out.exists()

    settings = load_settings()
    routing = RoutingConfig(policy="learned", learned={"model_path": str(out)})
    policy = build_policy(routing, settings.catalogue)
    table = [  # (signals, learner) → expected tier
        (EdgeSignals(intent="question", skill="s", complexity=0.05, text="?"), LearnerFeatures(mastery=0.9), "small"),
        (EdgeSignals(intent="question", skill="s", complexity=0.95, text="?"), LearnerFeatures(misconceptions=4), "core"),
    ]
    for signals, learner, tier in table:
        d = policy.decide(signals, learner)
        assert d.tier == tier and d.reason.startswith("learned: P(small suffices)") and d.features.p_small_ok is not None

    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nrouting:\n  policy: learned\n"
                   f"  learned: {{model_path: {tmp_path / 'missing.json'}}}\n")
    bad = _cli("config", "check", str(cfg))
    assert bad.returncode == 2 and "model_path" in bad.stderr and "routing train" in bad.stderr


@pytest.mark.parametrize("content, message", [
    ('{"features": {}, "small_ok": true}\n{oops\n', "outcomes.jsonl:2: not valid JSON"),
    ('{"features": [], "small_ok": true}\n', "outcomes.jsonl:1: features"),
    ('{"features": {}, "small_ok": "yes"}\n', "outcomes.jsonl:1: small_ok"),
    ('{"features": {}, "small_ok": true}\n', "need at least 10"),
])
def test_train_bad_input_exits_2_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    log = tmp_path / "outcomes.jsonl"
    log.write_text(content)
    r = _cli("routing", "train", str(log), "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_ledger_export_round_trips_and_trains(tmp_path: Path) -> None:
    ledger = BudgetLedger(BudgetConfig(sqlite_path=str(tmp_path / "b.db")))
    rows = _outcomes(200, 4)
    for i, r in enumerate(rows):
        ledger.record({"at": 1_764_547_200 + i * 3600, "request_id": f"r{i}", "tenant": "acme", "class_id": None,
                       "learner": f"p{i % 7}", "model": "tutor-small", "tier": "small", "prompt_tokens": 40,
                       "completion_tokens": 20, "cost": 0.00001, "currency": "USD", "policy": "cascade",
                       "reason": "cascade", "small_ok": r["small_ok"], "features": r["features"]})
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\n"
                   f"routing:\n  budgets: {{sqlite_path: {tmp_path / 'b.db'}}}\n")
    out = tmp_path / "ledger"
    r = _cli("routing", "ledger-export", "--out", str(out), "--config", str(cfg))
    assert r.returncode == 0 and "200 ledger entries" in r.stdout, r.stderr
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 200 and len({p.parent.name for p in out.rglob("*.parquet")}) == 9  # 200 h ≈ 9 days
    assert sorted(table["request_id"].to_pylist(), key=lambda s: int(s[1:])) == [f"r{i}" for i in range(200)]
    assert table.schema.field("at").type.tz == "UTC" and set(table["learner"].to_pylist()) <= {f"p{i}" for i in range(7)}
    import pandas as pd

    assert len(pd.read_parquet(out)) == 200
    assert len(read_outcomes(out)) == 200  # the export is training data for `routing train`
