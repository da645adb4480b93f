"""Tenants through the public API, against the running service (Redis learner store): a school's key never
reads, changes or even detects another school's learner, and the same learner id in two schools is two
learners."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis

pytestmark = pytest.mark.integration


def _turn(service, tenant: str, learner: str, message: str) -> httpx.Response:
    body = {"learner_id": learner, "session_id": "s", "message": message, "exercise_id": "frac-add-1"}
    return httpx.post(f"{service.url}/v1/tutor/turns", json=body, timeout=120,
                      headers=service.headers(service.tenant_keys[tenant]))


def test_a_tenant_never_sees_or_changes_another_tenants_learner(service, redis_server) -> None:
    learner = f"student-{uuid.uuid4().hex[:8]}"  # the same id in both schools
    acme, globex = (service.headers(service.tenant_keys[t]) for t in ("acme", "globex"))
    first = _turn(service, "acme", learner, "3/4")
    assert first.status_code == 200 and first.json()["memory"]["version"] == 1
    with httpx.Client(base_url=service.url, timeout=60) as http:
        never = f"never-{uuid.uuid4().hex[:8]}"
        for method, suffix, body in (("GET", "", None), ("GET", "/next-exercise", None),
                                     ("PATCH", "/preferences", {"pace": "slow"})):
            theirs = http.request(method, f"/v1/learners/{learner}{suffix}", json=body, headers=globex)
            missing = http.request(method, f"/v1/learners/{never}{suffix}", json=body, headers=globex)
            assert theirs.status_code == missing.status_code == 404, theirs.text
            # no existence oracle: another school's learner answers exactly as one that never existed
            assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
            assert theirs.json()["error"]["message"].replace(learner, "X") == \
                missing.json()["error"]["message"].replace(never, "X")
        second = _turn(service, "globex", learner, "2/6")  # globex's own student with the same id
        assert second.status_code == 200 and second.json()["memory"]["version"] == 1
        mine = http.get(f"/v1/learners/{learner}", headers=acme).json()
        assert mine["version"] == 1 and mine["skills"]["fractions.add"]["correct"] == 1 and mine["preferences"] == {}
        assert mine["misconceptions"] == {}  # globex's wrong answer left acme's learner alone
        other = http.get(f"/v1/learners/{learner}", headers=globex).json()
        assert other["skills"]["fractions.add"]["correct"] == 0 and "added_denominators" in other["misconceptions"]
    store = redis.Redis.from_url(redis_server.url)  # two records in the production store, one per tenant
    keys = {k.decode() for k in store.scan_iter(match=f"it:learner:{{*/{learner}}}")}
    assert keys == {f"it:learner:{{acme/{learner}}}", f"it:learner:{{globex/{learner}}}"}
