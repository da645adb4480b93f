"""Grafana dashboards as code: built from :data:`METRICS`, so a panel cannot query a metric that does not exist.

``tutor-cluster dashboards build`` writes ``deployments/grafana/*.json`` (committed; a test checks they are
current); ``tutor-cluster dashboards push --url --token`` uploads them with grafana-client.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tutor_cluster.telemetry.metrics import METRICS

SCHEMA_VERSION = 39
_DS = {"type": "prometheus", "uid": "${datasource}"}


def m(name: str, suffix: str = "") -> str:
    """The series name of a declared metric (KeyError for an undeclared one: dashboards cannot drift)."""
    return METRICS[name].series(suffix)


def _panel(title: str, exprs: list[tuple[str, str]], *, unit: str = "short", kind: str = "timeseries",
           description: str = "") -> dict[str, Any]:
    return {
        "type": kind, "title": title, "description": description, "datasource": _DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend, "datasource": _DS}
                    for i, (expr, legend) in enumerate(exprs)],
    }


def _layout(panels: list[dict[str, Any]], width: int = 12, height: int = 8) -> list[dict[str, Any]]:
    per_row = 24 // width
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"x": (i % per_row) * width, "y": (i // per_row) * height, "w": width, "h": height}
    return panels


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["tutor-cluster"], "timezone": "utc", "schemaVersion": SCHEMA_VERSION,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"}, "editable": True,
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": _layout(panels),
    }


def system() -> dict[str, Any]:
    lat = m("tutor_request_latency_seconds", "_bucket")
    tier = m("tutor_tier_latency_seconds", "_bucket")
    ttft = m("tutor_ttft_seconds", "_bucket")
    return _dashboard("tutor-system", "tutor-cluster / system", [
        _panel("Requests by route", [(f"sum by (route) (rate({m('tutor_requests')}[5m]))", "{{route}}")],
               unit="reqps"),
        _panel("Error ratio", [(f"sum(rate({m('tutor_requests')}{{status=~\"5xx\"}}[5m])) / "
                                f"clamp_min(sum(rate({m('tutor_requests')}[5m])), 1e-9)", "5xx share")],
               unit="percentunit"),
        _panel("Request latency p50 / p99", [
            (f"histogram_quantile(0.5, sum by (le, route) (rate({lat}[5m])))", "p50 {{route}}"),
            (f"histogram_quantile(0.99, sum by (le, route) (rate({lat}[5m])))", "p99 {{route}}")], unit="s"),
        _panel("Latency per tier (p99)", [
            (f"histogram_quantile(0.99, sum by (le, tier) (rate({tier}[5m])))", "{{tier}}")], unit="s"),
        _panel("Time to first token (p50 / p99)", [
            (f"histogram_quantile(0.5, sum by (le, model) (rate({ttft}[5m])))", "p50 {{model}}"),
            (f"histogram_quantile(0.99, sum by (le, model) (rate({ttft}[5m])))", "p99 {{model}}")], unit="s"),
        _panel("Turns by tier", [(f"sum by (tier) (rate({m('tutor_turns')}[5m]))", "{{tier}}")], unit="reqps"),
        _panel("Tokens by model", [(f"sum by (model, kind) (rate({m('tutor_tokens')}[5m]))",
                                    "{{model}} {{kind}}")]),
        _panel("Spend per hour by tier", [(f"sum by (tier) (rate({m('tutor_cost')}[1h])) * 3600", "{{tier}}")],
               unit="currencyUSD"),
        _panel("Errors by type", [(f"sum by (type) (rate({m('tutor_errors')}[5m]))", "{{type}}")]),
        _panel("Budget soft-limit alerts", [(f"sum by (rule) (increase({m('tutor_budget_alerts')}[1h]))",
                                             "{{rule}}")]),
        _panel("Learner memory cache hit rate", [
            (f"sum(rate({m('tutor_memory_reads')}{{result=\"hit\"}}[5m])) / "
             f"clamp_min(sum(rate({m('tutor_memory_reads')}[5m])), 1e-9)", "hit rate")], unit="percentunit"),
        _panel("In flight (gateway)", [(f"sum({m('tutor_in_flight')})", "requests")]),
        _panel("Queue depth per tier", [(f"sum by (deployment) ({m('serve_deployment_queued_queries')})",
                                         "{{deployment}}")]),
        _panel("Replicas per tier", [(f"sum by (deployment) ({m('serve_deployment_replica_healthy')})",
                                      "{{deployment}}")]),
    ])


def pedagogy() -> dict[str, Any]:
    att = m("tutor_attempts")
    return _dashboard("tutor-pedagogy", "tutor-cluster / learning", [
        _panel("Attempts by skill", [(f"sum by (skill) (increase({att}[1h]))", "{{skill}}")]),
        _panel("Correctness by skill", [
            (f"sum by (skill) (increase({att}{{correct=\"true\"}}[1h])) / "
             f"clamp_min(sum by (skill) (increase({att}[1h])), 1)", "{{skill}}")], unit="percentunit"),
        _panel("Skills mastered", [(f"sum by (skill) (increase({m('tutor_mastery_transitions')}[1d]))",
                                    "{{skill}}")]),
        _panel("Attempts to mastery (median)", [
            (f"histogram_quantile(0.5, sum by (le, skill) "
             f"(rate({m('tutor_attempts_to_mastery', '_bucket')}[1d])))", "{{skill}}")]),
        _panel("Misconceptions", [(f"sum by (skill, tag) (increase({m('tutor_misconceptions')}[1d]))",
                                   "{{skill}} {{tag}}")]),
        _panel("Hints by skill", [(f"sum by (skill) (increase({m('tutor_hints')}[1h]))", "{{skill}}")]),
        _panel("Cost per mastered skill", [
            (f"sum(increase({m('tutor_cost')}[1d])) / "
             f"clamp_min(sum(increase({m('tutor_mastery_transitions')}[1d])), 1)", "cost / mastered skill")],
               unit="currencyUSD"),
        _panel("Curriculum passages per model turn", [
            (f"sum(rate({m('tutor_retrieval_passages')}[5m])) / "
             f"clamp_min(sum(rate({m('tutor_turns')}{{tier!=\"edge\"}}[5m])), 1e-9)", "passages")]),
    ])


DASHBOARDS = {"system": system, "pedagogy": pedagogy}
_SERIES = re.compile(r"\bray_(?:tutor|serve)_[a-z0-9_]+")


def referenced_series(dashboard: dict[str, Any]) -> set[str]:
    return {name for p in dashboard["panels"] for t in p["targets"] for name in _SERIES.findall(t["expr"])}


def build(out: str | Path) -> list[Path]:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in DASHBOARDS.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(make(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def push(url: str, token: str, folder_uid: str | None = None) -> list[str]:
    """Create or overwrite every dashboard in a Grafana (grafana-client); returns their URLs."""
    from grafana_client import GrafanaApi

    api = GrafanaApi.from_url(url=url, credential=token)
    out = []
    for make in DASHBOARDS.values():
        body: dict[str, Any] = {"dashboard": make(), "overwrite": True, "message": "tutor-cluster dashboards push"}
        if folder_uid:
            body["folderUid"] = folder_uid
        result = api.dashboard.update_dashboard(body)
        out.append(str(result.get("url", result.get("uid", ""))))
    return out
