"""Interaction events: Parquet parts partitioned by date and region that round-trip through pyarrow and pandas;
`tutor-cluster report` renders an HTML page whose plots are real, non-blank images."""

from __future__ import annotations

import base64
import io
import os
import random
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tutor_cluster.config.telemetry import EventsConfig
from tutor_cluster.telemetry.events import SCHEMA, EventSink, read_events


def _events(n: int) -> list[dict]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        learner, skill = f"p{i % 5}", ["fractions.add", "algebra.linear"][i % 2]
        before = min(0.99, 0.1 + 0.08 * (i // 2))
        day = datetime(2026, 11, 30, 10, tzinfo=timezone.utc) + timedelta(days=int(i >= n // 2))
        out.append({"at": day.timestamp() + i,
                    "turn_id": f"t{i}", "tenant": "acme", "learner": learner, "session": f"s{i % 3}",
                    "skill": skill, "intent": "answer_attempt", "exercise_id": "e", "tier": rng.choice(
                        ["edge", "edge", "small", "core"]), "model": None, "correct": i % 3 != 0,
                    "misconceptions": ["sign_error"] if i % 3 == 0 else [], "hint": i % 4 == 0,
                    "mastery_before": before, "mastery_after": min(0.99, before + 0.08), "mastered": before > 0.9,
                    "attempts": i // 2 + 1, "cost": 0.0001 * (i % 4), "prompt_tokens": 10, "completion_tokens": 5,
                    "citations": 0, "latency_total_ms": 20.0 + i, "latency_edge_ms": 3.0, "latency_core_ms": None})
    return out


def test_events_round_trip_partitioned_by_date_and_region(tmp_path: Path) -> None:
    sink = EventSink(EventsConfig(path=str(tmp_path / "ev"), region="eu-west", max_buffer=25))
    for e in _events(60):
        sink.add(e)
    sink.close()
    parts = sorted(p.relative_to(tmp_path / "ev").parts[:2] for p in (tmp_path / "ev").rglob("*.parquet"))
    assert set(parts) == {("date=2026-11-30", "region=eu-west"), ("date=2026-12-01", "region=eu-west")}
    assert not list((tmp_path / "ev").rglob("*.tmp"))
    first = next((tmp_path / "ev").rglob("*.parquet"))
    assert pq.read_schema(first).names == SCHEMA.names
    df = read_events(tmp_path / "ev")
    assert len(df) == 60 and sorted(df["turn_id"], key=lambda t: int(t[1:])) == [f"t{i}" for i in range(60)]
    assert set(df["region"]) == {"eu-west"} and df["misconceptions"].map(len).sum() == 20
    assert "learner_id" not in df.columns and "message" not in df.columns  # pseudonymous, no text


def test_disabled_sink_writes_nothing(tmp_path: Path) -> None:
    sink = EventSink(EventsConfig(path=str(tmp_path / "ev"), enabled=False))
    sink.add(_events(1)[0])
    sink.close()
    assert not (tmp_path / "ev").exists()


def test_report_renders_non_blank_plots(tmp_path: Path) -> None:
    sink = EventSink(EventsConfig(path=str(tmp_path / "ev")))
    for e in _events(80):
        sink.add(e)
    sink.close()
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "report", "--events", str(tmp_path / "ev"),
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "80 turns" in r.stdout and "4 plots" in r.stdout, r.stderr
    page = out.read_text()
    for title in ("Mastery curves", "Tier mix", "Cost per mastered skill", "Latency percentiles"):
        assert f"<h2>{title}</h2>" in page
    import matplotlib.image as mpimg

    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 4
    for b64 in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300 and pixels.std() > 0.05  # drawn, not blank

    empty = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "report", "--events",
                            str(tmp_path / "none"), "--out", str(tmp_path / "x.html")], capture_output=True, text=True)
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["dashboards", "build", "--out", "/proc/no-such-dir/x"],
    ["routing", "ledger-export", "--out", "/proc/no-such-dir/x"],
])
def test_unwritable_output_is_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    env = {**os.environ, "TUTOR__ROUTING__BUDGETS__SQLITE_PATH": str(tmp_path / "b.db"),
           "TUTOR__KNOWLEDGE__STORE__PATH": str(tmp_path / "q")}
    r = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", *args], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 2 and "cannot write" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
