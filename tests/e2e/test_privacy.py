"""A learner's data rights through the running service (real Ray, Serve, Redis learner memory, vault, audit log):
register, tutor, export, erase — then every store, file and log the service wrote is scanned for the learner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import Service

pytestmark = pytest.mark.integration

PII = {"display_name": "Wilhelmina Oyelaran-Scutt", "email": "w.oyelaran.scutt@example.org",
       "guardian_email": "oyelaran.family@example.org", "age_band": "13_15"}
MESSAGE = "I think 3/4 since my tortoise Quintavius says so"
RAY_LOGS = Path("/tmp/ray/session_latest/logs")


def _redis_bytes(r: redis.Redis, aof_dir: Path) -> bytes:
    values = [k + (r.dump(k) or b"") for k in r.scan_iter(count=1000)]
    files = [p.read_bytes() for p in sorted(aof_dir.rglob("*")) if p.is_file()]
    return b"".join(values + files)


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_register_export_erase_and_nothing_remains(service: Service, client, redis_server) -> None:
    r = client.post("/v1/learners", json=PII)
    assert r.status_code == 201, r.text
    learner = r.json()["learner_id"]
    for i in range(2):
        turn = client.post("/v1/tutor/turns", json={"learner_id": learner, "session_id": "p", "turn_id": f"p{i}",
                                                    "message": MESSAGE, "exercise_id": "frac-add-1"})
        assert turn.status_code == 200, turn.text
    export = client.get(f"/v1/learners/{learner}/export")
    assert export.status_code == 200, export.text
    doc = export.json()
    assert doc["registration"]["profile"]["email"] == PII["email"] and doc["memory"]["recent"][0]["summary"] == MESSAGE
    store = redis.Redis.from_url(redis_server.url)
    assert learner.encode() in _redis_bytes(store, redis_server.dir)  # memory is in Redis, under the opaque id

    erased = client.delete(f"/v1/learners/{learner}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["unlinkable"] and erased.json()["erased"] == ["relations", "vault", "memory"]
    assert client.get(f"/v1/learners/{learner}").status_code == 404

    traces = [learner, *PII.values(), MESSAGE, "Quintavius"]
    deadline = time.monotonic() + service.patience(30)  # the AOF rewrite runs in the background
    while True:
        info = store.info("persistence")
        left = [t for t in traces if t.encode() in _redis_bytes(store, redis_server.dir)]
        if not left and not info["aof_rewrite_in_progress"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left == [], f"still in Redis (keys or append-only file): {left}"
    on_disk = _files(service.config.parent)  # vault, audit log, events, the service's own log
    on_disk += _files(RAY_LOGS)  # every Ray and Serve process's log
    assert [t for t in traces if t.encode() in on_disk] == []
