"""The disclosure audit trail through the running service: every access to a learner's data is a chained record
the right roles read over HTTP, and `tutor-cluster audit verify` checks the service's own log."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import Service

pytestmark = pytest.mark.integration


def test_accesses_are_recorded_readable_and_verifiable(service: Service, client) -> None:
    turn = client.post("/v1/tutor/turns", json={"learner_id": "audit-l1", "session_id": "a", "message": "3/4",
                                                "exercise_id": "frac-add-1"})
    assert turn.status_code == 200, turn.text
    assert client.get("/v1/learners/audit-l1").status_code == 200  # the admin key (platform_admin) views it
    r = client.get("/v1/learners/audit-l1/audit")
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert [x["route"] for x in records[:2]] == ["GET /v1/learners/{learner_id}", "POST /v1/tutor/turns"]
    assert all(x["actor"] == "test-admin" and x["role"] == "platform_admin" for x in records[:2])
    assert "audit-l1" not in r.text  # the learner appears only as a keyed pseudonym
    tenant_key = service.tenant_keys["acme"]  # role service: tutoring, but not the disclosure record
    assert client.get("/v1/learners/audit-l1/audit", headers=service.headers(tenant_key)).status_code in (403, 404)
    verify = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "audit", "verify", "--config",
                             str(service.config), "--region", "eu"], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "records intact" in verify.stdout, verify.stderr
