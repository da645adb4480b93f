"""Local mode is loopback only, from the kernel's socket table: while the real service answers edge and model
turns (JSON and streamed) and runs a re-embed Ray Job, no socket of any of its processes (Ray's GCS, raylet,
agents and workers, Serve, the vLLM engine and its workers, the job's driver and Ray Data workers) listens on,
or is connected over, anything but 127.0.0.1. The session-wide watch (conftest) checks the same for the whole
e2e tier."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.e2e.conftest import Service, ray_token
from tutor_cluster.app import sockets
from tutor_cluster.config.settings import SAMPLE_CURRICULUM


def test_turns_and_a_reembed_job_use_loopback_only(service: Service, client: httpx.Client, tmp_path: Path) -> None:
    watch = service.sockets
    assert watch is not None
    before = watch.samples
    edge = client.post("/v1/tutor/turns", json={"learner_id": "lo-1", "session_id": "lo", "exercise_id": "frac-add-1",
                                               "message": "6/8"})
    assert edge.status_code == 200 and edge.json()["tier"] == "edge", edge.text
    model = client.post("/v1/tutor/turns", json={"learner_id": "lo-1", "session_id": "lo",
                                                "message": "What is a denominator?", "mode": "explain"})
    assert model.status_code == 200 and model.json()["tier"] != "edge", model.text
    with client.stream("POST", "/v1/tutor/turns", json={"learner_id": "lo-1", "session_id": "lo", "stream": True,
                                                        "message": "Give me a tip on fractions"}) as r:
        assert r.status_code == 200
        assert "event: done" in "".join(r.iter_text())
    watch.check()  # while the engine's connections are fresh
    source = tmp_path / "curriculum"
    shutil.copytree(SAMPLE_CURRICULUM, source)
    job = service.submit_reembed(source, token=ray_token())
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    watch.check()

    # The check is not vacuous: it saw the service's processes, with sockets that listen and that talk.
    assert watch.samples > before + 1
    assert {"gcs_server", "raylet"} <= watch.processes, watch.processes
    assert any(name.startswith("VLLM") for name in watch.processes), watch.processes
    now = sockets.sockets_of(sockets.service_pids(service.pid))
    assert any(s.listening for s in now) and any(s.state == "ESTABLISHED" for s in now)
    assert not watch.exposed, f"non-loopback sockets:\n{watch.report()}"

