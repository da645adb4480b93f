"""ASGI middleware recording API metrics: requests by route and status class, latency, errors by type."""

from __future__ import annotations

import json
import re
import time
from typing import Any, Awaitable, Callable

from tutor_cluster.telemetry.metrics import Metrics

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_IDS = re.compile(r"^/v1/learners/[^/]+")


def route_label(path: str) -> str:
    """A bounded route label: ids replaced by placeholders, unknown paths folded into 'other'."""
    path = _IDS.sub("/v1/learners/{id}", path)
    known = ("/v1/tutor/turns", "/v1/chat/completions", "/v1/models", "/v1/curriculum/search", "/v1/admin/stats",
             "/v1/learners/{id}", "/v1/learners/{id}/preferences", "/v1/learners/{id}/next-exercise",
             "/healthz", "/readyz")
    return path if path in known else "other"


class MetricsMiddleware:
    """Outermost middleware: sees every response, auth refusals included."""

    def __init__(self, app: Any, metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app, self.metrics, self.clock = app, metrics, clock
        self._in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(scope.get("path", "").removeprefix(scope.get("root_path", "")) or scope.get("path", ""))
        t0 = self.clock()
        state: dict[str, Any] = {"status": 500, "body": b""}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and state["status"] >= 400 and len(state["body"]) < 4096:
                state["body"] += message.get("body", b"")
            await send(message)

        self._in_flight += 1
        self.metrics.set("tutor_in_flight", self._in_flight)
        try:
            await self.app(scope, receive, capture)
        finally:
            status = state["status"]
            self.metrics.inc("tutor_requests", route=route, status=f"{status // 100}xx")
            self.metrics.observe("tutor_request_latency_seconds", self.clock() - t0, route=route)
            if status >= 400:
                self.metrics.inc("tutor_errors", route=route, type=_error_type(state["body"], status))
            self._in_flight -= 1
            self.metrics.set("tutor_in_flight", self._in_flight)


def _error_type(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body)["error"]["type"])[:40]
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"
