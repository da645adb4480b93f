"""Fault injection on the real service: the core engine process is killed (SIGKILL). Model turns then get a
503 with Retry-After within the deadline — JSON and streaming alike — instead of hanging, while answers the edge
can settle keep working. Runs last: the engine needs ~1 min to come back."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.e2e.conftest import Service

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def _engine_pids(service: Service) -> list[int]:
    """vLLM engine processes (EngineCore, Worker) of this test's service (same session as its `tutor-cluster up`)."""
    out = subprocess.run(["pgrep", "-f", "^VLLM::"], capture_output=True, text=True).stdout.split()
    pids = []
    for pid in map(int, out):
        try:
            if os.getsid(pid) == service.pid:
                pids.append(pid)
        except ProcessLookupError:
            continue
    return pids


def test_dead_engine_is_a_503_with_retry_after_not_a_hang(service: Service, client: httpx.Client) -> None:
    pids = _engine_pids(service)
    assert pids, "no vLLM engine process found for the service"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline_s = 120  # server.request_timeout_s of the test service
    for stream in (False, True):
        t0 = time.monotonic()
        r = client.post("/v1/tutor/turns", json={"learner_id": "fault-l1", "session_id": "f", "stream": stream,
                                                 "message": "Why do we need common denominators?"})
        elapsed = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "model_unavailable" and int(r.headers["Retry-After"]) >= 1
        assert elapsed < deadline_s
    edge = client.post("/v1/tutor/turns", json={"learner_id": "fault-l1", "session_id": "f",
                                                "exercise_id": "frac-add-1", "message": "3/4"})
    assert edge.status_code == 200 and edge.json()["tier"] == "edge"  # the edge tier does not need the engine
