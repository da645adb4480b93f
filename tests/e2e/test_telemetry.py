"""Telemetry end to end: after a scripted session the node's metrics endpoint shows the expected counters and
histograms with the right values; a real Prometheus (Debian's) scrapes them with our rules loaded; the
session's interaction events land in Parquet and the report renders from them."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import HOME_REGION, METRICS_INTERVAL_MS, REPO_ROOT, Service
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.telemetry.events import read_events

pytestmark = pytest.mark.integration
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")  # value [timestamp]
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in httpx.get(url, timeout=10).text.splitlines():
        m = _LINE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1)].append((dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, ()) if all(lab.get(k) == want for k, want in labels.items()))


def _settle() -> None:
    time.sleep(3 * METRICS_INTERVAL_MS / 1000)  # earlier increments are published before the baseline


def test_metrics_after_a_scripted_session(service: Service, client: httpx.Client) -> None:
    _settle()
    before = scrape(service.metrics)
    turns = [("lin-eq-1", "x = 8"), ("lin-eq-1", "x = 8"), ("lin-eq-1", "x = 2"), ("lin-eq-1", "hint please")]
    for ex, msg in turns:
        r = client.post("/v1/tutor/turns", json={"learner_id": "metrics-l1", "session_id": "m1", "exercise_id": ex,
                                                 "message": msg})
        assert r.status_code == 200, r.text
    model = client.post("/v1/tutor/turns", json={"learner_id": "metrics-l1", "session_id": "m1",
                                                 "message": "what is a denominator?"})
    assert model.status_code == 200 and model.json()["tier"] != "edge"
    assert httpx.post(f"{service.url}/v1/tutor/turns", json={}).status_code == 401

    expected = {  # (series, labels) → increase caused by the session above
        ("ray_tutor_attempts_total", (("skill", "algebra.linear"), ("correct", "false"))): 2,
        ("ray_tutor_attempts_total", (("skill", "algebra.linear"), ("correct", "true"))): 1,
        ("ray_tutor_misconceptions_total", (("skill", "algebra.linear"), ("tag", "inverse_operation"))): 2,
        ("ray_tutor_hints_total", (("skill", "algebra.linear"),)): 3,  # 2 in "Not quite" replies + 1 asked for
        ("ray_tutor_turns_total", (("tier", "edge"),)): 4,
        ("ray_tutor_requests_total", (("route", "/v1/tutor/turns"), ("status", "2xx"))): 5,
        ("ray_tutor_requests_total", (("route", "/v1/tutor/turns"), ("status", "4xx"))): 1,
        ("ray_tutor_errors_total", (("route", "/v1/tutor/turns"), ("type", "unauthorized"))): 1,
        ("ray_tutor_request_latency_seconds_count", (("route", "/v1/tutor/turns"),)): 6,
        ("ray_tutor_tier_latency_seconds_count", (("tier", "edge"),)): 5,
    }
    body = model.json()
    deadline = time.monotonic() + service.patience(60)
    while True:
        after = scrape(service.metrics)
        got = {key: total(after, key[0], **dict(key[1])) - total(before, key[0], **dict(key[1])) for key in expected}
        model_cost = total(after, "ray_tutor_cost_total", model=body["model"]) - total(
            before, "ray_tutor_cost_total", model=body["model"])
        healthy = {lab.get("deployment") for lab, v in after.get("ray_serve_deployment_replica_healthy", ())
                   if v == 1}
        tiers = {"gateway", "edge", "router", "knowledge", "core-smollm2"}
        if got == expected and model_cost > 0 and healthy or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got == expected
    assert model_cost == pytest.approx(body["cost"]["amount"], rel=1e-6)
    completion = total(after, "ray_tutor_tokens_total", model=body["model"], kind="completion") - total(
        before, "ray_tutor_tokens_total", model=body["model"], kind="completion")
    assert completion == body["usage"]["completion_tokens"]
    assert any(lab.get("le") for lab, _ in after["ray_tutor_ttft_seconds_bucket"])
    # queue depth and replica count per tier come from Ray Serve's own metrics (the dashboards query them)
    # Ray Serve publishes these on its own schedule (per replica, as health checks report): the series exists,
    # named as the dashboards query it, labelled by our tiers
    assert healthy and healthy <= tiers, sorted(healthy)
    assert after["ray_serve_deployment_queued_queries"]
    for name in after:  # no personal data in any label of ours
        if name.startswith("ray_tutor_"):
            for lab, _ in after[name]:
                assert "metrics-l1" not in lab.values() and "m1" not in lab.values()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_scrapes_the_service_with_our_rules(service: Service, client: httpx.Client,
                                                       tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: scripts/test.sh installs Debian's package"
    port = _free_port()
    target = service.metrics.removeprefix("http://").removesuffix("/metrics")
    shutil.copy(REPO_ROOT / "deployments" / "prometheus" / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\n"
        f"scrape_configs:\n  - job_name: ray\n    static_configs: [{{targets: ['{target}']}}]\n")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        client.post("/v1/tutor/turns", json={"learner_id": "prom-l1", "session_id": "p", "exercise_id": "frac-add-1",
                                             "message": "3/4"})
        deadline = time.monotonic() + service.patience(90)
        value = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{api}/query", params={"query": 'sum(ray_tutor_turns_total{tier="edge"})'}, timeout=5)
                result = r.json()["data"]["result"]
                if result and float(result[0]["value"][1]) > 0:
                    value = float(result[0]["value"][1])
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(1)
        assert value is not None and value >= 1, "Prometheus never saw ray_tutor_turns_total"
        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        assert {g["name"] for g in groups} == {"tutor-cluster.recording", "tutor-cluster.alerts"}
        assert all(rule["health"] != "err" for g in groups for rule in g["rules"]), groups
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_events_reach_parquet_and_the_report_renders(service: Service, client: httpx.Client,
                                                     tmp_path: Path) -> None:
    r = client.post("/v1/tutor/turns", json={"learner_id": "events-l1", "session_id": "e1",
                                             "exercise_id": "frac-add-2", "message": "5/6"})
    assert r.status_code == 200
    turn_id = r.json()["turn_id"]
    deadline = time.monotonic() + service.patience(30)
    while time.monotonic() < deadline:
        if service.events.exists():
            df = read_events(service.events)
            if turn_id in set(df["turn_id"]):
                break
        time.sleep(0.5)
    row = df[df["turn_id"] == turn_id].iloc[0]
    assert row["tier"] == "edge" and bool(row["correct"]) and row["skill"] == "fractions.add"
    assert row["region"] == "eu"  # the region that served it: its partition of the shared analytics dataset
    # the learner is a keyed pseudonym: the HMAC under the region's secret `up` keeps in its key file
    keys = PseudonymKeys.load(service.region_settings("eu").privacy.keys_path())
    assert row["learner"] == keys.pseudonym(row["tenant"], "events-l1") and row["learner"].startswith(keys.current)
    assert "events-l1" not in str(row.to_dict())
    out = tmp_path / "report.html"
    rep = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "report", "--events", str(service.events),
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0 and "4 plots" in rep.stdout, rep.stderr


def test_request_id_runs_through_every_tier_and_its_json_logs(service: Service, client: httpx.Client) -> None:
    import glob
    import json
    import uuid

    trace = f"trace-{uuid.uuid4().hex}"
    r = client.post("/v1/tutor/turns", headers={"X-Request-ID": trace},
                    json={"learner_id": "trace-l1", "session_id": "t", "message": "why do fractions need a common "
                                                                                  "denominator?"})
    assert r.status_code == 200 and r.json()["tier"] != "edge"
    assert r.headers["x-request-id"] == trace and r.json()["request_id"] == trace
    deadline = time.monotonic() + service.patience(30)
    seen: dict[str, dict] = {}
    while time.monotonic() < deadline and not {"gateway", "edge", "router"} <= set(seen):
        for path in glob.glob("/tmp/ray/session_*/logs/serve/replica_*.log"):
            with open(path, errors="replace") as fh:
                for line in fh:
                    if trace in line:
                        record = json.loads(line)  # JSON lines (server.log_encoding)
                        # "<app>_<deployment>": the request went to the region at / (eu's application)
                        app = service.region_settings(HOME_REGION).app_name(HOME_REGION)
                        seen[record["deployment"].removeprefix(f"{app}_")] = record
        time.sleep(0.5)
    assert {"gateway", "edge", "router"} <= set(seen), sorted(seen)
    assert all(rec["request_id"] == trace for rec in seen.values())
