"""Dashboards as code and Prometheus rules: generated JSON is what is committed, every query names a declared
metric, rules load in a real promtool, and `dashboards push` speaks Grafana's HTTP API (against a local stand-in
server: a Grafana server cannot be installed here — it is not packaged for Debian)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from tests import REPO_ROOT
from tutor_cluster.telemetry.dashboards import DASHBOARDS, referenced_series
from tutor_cluster.telemetry.metrics import METRICS

ROOT = REPO_ROOT
DECLARED = {spec.series(sfx) for spec in METRICS.values() for sfx in ("", "_bucket", "_sum", "_count")}


def test_committed_dashboards_are_current() -> None:
    for name, make in DASHBOARDS.items():
        committed = json.loads((ROOT / "deployments" / "grafana" / f"{name}.json").read_text())
        assert committed == json.loads(json.dumps(make())), f"run `tutor-cluster dashboards build` ({name})"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_queries_a_declared_metric(name: str) -> None:
    dashboard = DASHBOARDS[name]()
    assert dashboard["uid"] and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"] and panel["title"]
        for target in panel["targets"]:
            found = referenced_series({"panels": [{"targets": [target]}]})
            assert found, f"{panel['title']}: no tutor metric in {target['expr']}"
            assert found <= DECLARED, f"{panel['title']}: undeclared {found - DECLARED}"
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
    assert len(set(boxes)) == len(boxes)  # no two panels on the same spot


def test_no_metric_label_can_carry_personal_data() -> None:
    for spec in METRICS.values():
        assert not set(spec.labels) & {"learner", "learner_id", "session", "session_id", "user", "request_id",
                                        "turn_id", "email"}, spec.name


def test_rules_reference_declared_metrics_and_load_in_promtool(tmp_path: Path) -> None:
    rules = ROOT / "deployments" / "prometheus" / "rules.yml"
    text = rules.read_text()
    names = set(re.findall(r"\bray_tutor_[a-z0-9_]+", text))
    assert names and names <= DECLARED, names - DECLARED
    groups = yaml.safe_load(text)["groups"]
    assert {r.get("alert") for g in groups for r in g["rules"]} >= {"TutorHighErrorRate", "TutorTurnLatencyP99High",
                                                                     "TutorBudgetBurn"}
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test.sh installs Debian's prometheus package"
    r = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("histogram_quantile(0.99,", "histogram_quantile(0.99"))
    assert subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True).returncode != 0


class _Grafana(BaseHTTPRequestHandler):
    """Grafana's dashboard endpoint, as far as `dashboards push` uses it."""

    received: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Grafana.received.append((self.path, self.headers.get("Authorization", ""), body))
        if self.headers.get("Authorization") != "Bearer s3cret":
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "invalid API key"}')
            return
        uid = body["dashboard"]["uid"]
        out = json.dumps({"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: object) -> None:
        pass


def test_dashboards_push_uploads_every_dashboard() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Grafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        cli = [sys.executable, "-m", "tutor_cluster.cli.main", "dashboards", "push", "--url", url]
        ok = subprocess.run([*cli, "--token", "s3cret"], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert "/d/tutor-system/x" in ok.stdout and "/d/tutor-pedagogy/x" in ok.stdout
        paths = {(p, auth) for p, auth, _ in _Grafana.received}
        assert paths == {("/api/dashboards/db", "Bearer s3cret")}
        assert all(b["overwrite"] is True for _, _, b in _Grafana.received)
        denied = subprocess.run([*cli, "--token", "wrong"], capture_output=True, text=True, timeout=60)
        assert denied.returncode == 1 and "push to" in denied.stderr and len(denied.stderr.splitlines()) == 1
        missing = subprocess.run(cli, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"})
        assert missing.returncode == 2 and "token" in missing.stderr
    finally:
        server.shutdown()
