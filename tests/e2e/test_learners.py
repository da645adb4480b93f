"""Learner memory through the public API: graded answers move mastery, retries apply once, misconceptions
feed routing, preferences and next-exercise, and a store outage gives 503 + Retry-After."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration


def _learner() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}"


def _turn(client: httpx.Client, learner: str, message: str, exercise_id: str | None = None, **extra) -> dict:
    body = {"learner_id": learner, "session_id": "s", "message": message, **extra}
    if exercise_id:
        body["exercise_id"] = exercise_id
    r = client.post("/v1/tutor/turns", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_right_answers_reach_mastery_wrong_ones_do_not(client) -> None:
    good, bad = _learner(), _learner()
    seen = []
    for _ in range(12):
        body = _turn(client, good, "3/4", "frac-add-1")
        seen.append(body["mastery"])
        _turn(client, bad, "4/5", "frac-add-1")
    assert all(b["after"] > b["before"] for b in seen[:5])
    assert seen[-1]["mastered"] is True and seen[0]["mastered"] is False
    g = client.get(f"/v1/learners/{good}").json()
    b = client.get(f"/v1/learners/{bad}").json()
    assert g["skills"]["fractions.add"]["mastered"] and g["skills"]["fractions.add"]["attempts"] == 12
    assert not b["skills"]["fractions.add"]["mastered"] and b["skills"]["fractions.add"]["correct"] == 0
    assert g["version"] == 12 and len(g["recent"]) == 12


def test_a_retried_turn_updates_memory_once(client) -> None:
    learner = _learner()
    first = _turn(client, learner, "x = 2", "lin-eq-1", turn_id="retry-1")
    again = _turn(client, learner, "x = 2", "lin-eq-1", turn_id="retry-1")
    assert first["memory"] == {"version": 1, "applied": True}
    assert again["memory"] == {"version": 1, "applied": False}
    assert client.get(f"/v1/learners/{learner}").json()["skills"]["algebra.linear"]["attempts"] == 1


def test_misconceptions_are_remembered_and_route_to_core(service, client) -> None:
    learner = _learner()
    for _ in range(2):
        body = _turn(client, learner, "2/6", "frac-add-1")
        assert body["check"]["misconceptions"] == ["added_denominators"] and body["tier"] == "edge"
    view = client.get(f"/v1/learners/{learner}").json()
    assert view["misconceptions"]["added_denominators"]["count"] == 2
    # a short, simple question would go to the small model; this learner's history sends it to core
    body = _turn(client, learner, "what is a fraction?", "frac-add-1")
    assert body["tier"] == "core" and "misconceptions" in body["reason"]
    fresh = _turn(client, _learner(), "what is a fraction?", "frac-add-1")
    assert fresh["tier"] == "small"


def test_preferences_and_next_exercise(client) -> None:
    learner = _learner()
    _turn(client, learner, "3/4", "frac-add-1")
    r = client.patch(f"/v1/learners/{learner}/preferences", json={"pace": "slow", "language": "pt-BR"})
    assert r.status_code == 200 and r.json()["preferences"] == {"pace": "slow", "language": "pt-BR"}
    r = client.patch(f"/v1/learners/{learner}/preferences", json={"learning_style": "visual"})
    assert r.json()["preferences"] == {"pace": "slow", "language": "pt-BR", "learning_style": "visual"}
    # fractions.add was practised (mastery above the prior); the untouched skills tie at the prior and the
    # first of them in the curriculum order comes next
    nxt = client.get(f"/v1/learners/{learner}/next-exercise").json()
    assert (nxt["skill"], nxt["exercise_id"]) == ("fractions.simplify", "frac-simplify-1")
    assert nxt["reason"].startswith("lowest_mastery")
    _turn(client, learner, "3/4", "frac-simplify-1")
    assert client.get(f"/v1/learners/{learner}/next-exercise").json()["skill"] == "algebra.linear"


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("GET", "/v1/learners/nobody-here", None, 404, "learner_id"),
    ("GET", "/v1/learners/nobody-here/next-exercise", None, 404, "learner_id"),
    ("PATCH", "/v1/learners/nobody-here/preferences", {"pace": "slow"}, 404, "learner_id"),
    ("GET", "/v1/learners/bad%20id", None, 422, "learner_id"),
    ("PATCH", "/v1/learners/{known}/preferences", {"pace": "warp"}, 422, "pace"),
    ("PATCH", "/v1/learners/{known}/preferences", {"language": "English!"}, 422, "language"),
    ("PATCH", "/v1/learners/{known}/preferences", {"colour": "red"}, 422, "colour"),
])
def test_learner_routes_reject_bad_input(client, method, path, body, status, field) -> None:
    known = _learner()
    _turn(client, known, "3/4", "frac-add-1")
    r = client.request(method, path.format(known=known), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field


def test_store_outage_gives_503_with_retry_after_and_cached_reads_work(client, redis_server) -> None:
    cached = _learner()
    _turn(client, cached, "3/4", "frac-add-1")
    redis_server.kill9()
    try:
        r = client.post("/v1/tutor/turns", json={"learner_id": _learner(), "session_id": "s", "message": "3/4",
                                                  "exercise_id": "frac-add-1"})
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["type"] == "memory_unavailable"
        assert client.get(f"/v1/learners/{cached}").status_code == 200  # served from the actor's cache
        r = client.post("/v1/tutor/turns", json={"learner_id": cached, "session_id": "s", "message": "3/4",
                                                  "exercise_id": "frac-add-1"})
        assert r.status_code == 503  # a write needs the store: refused, not half-written
        assert client.get("/readyz").status_code == 503
    finally:
        redis_server.start()
    assert client.get(f"/v1/learners/{cached}").json()["version"] == 1
    assert _turn(client, cached, "3/4", "frac-add-1")["memory"]["version"] == 2
