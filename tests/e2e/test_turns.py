"""Tutoring turns end to end over HTTP through gateway → edge → router → vLLM."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration


def _turn(client: httpx.Client, message: str, exercise_id: str | None = None, **extra) -> httpx.Response:
    body = {"learner_id": "learner-1", "session_id": "s-1", "message": message, **extra}
    if exercise_id:
        body["exercise_id"] = exercise_id
    return client.post("/v1/tutor/turns", json=body)


@pytest.mark.parametrize(
    ("exercise_id", "answer", "correct"),
    [
        ("frac-add-1", "3/4", True), ("frac-add-1", "0.75", True), ("frac-add-1", "6/8", True),
        ("frac-add-1", "2/6", False), ("lin-eq-1", "x = 2", True), ("lin-eq-1", "2 = x", True),
        ("lin-eq-1", "x = 3", False), ("lin-eq-1", "2x + 3 = 7", False), ("lin-eq-2", "y=1", True),
        ("py-func-1", "def add(a, b)\n    return a + b", False),
    ],
)
def test_edge_settled_turns_never_reach_a_model(service, client, exercise_id, answer, correct) -> None:
    before = service.core_requests()
    r = _turn(client, answer, exercise_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "edge" and body["model"] is None
    assert body["check"]["correct"] is correct
    assert body["cost"]["amount"] == 0 and body["usage"]["total_tokens"] == 0
    assert body["reason"].startswith("edge:")
    assert service.core_requests() == before, "an edge-settled turn reached the core engine"


def test_code_syntax_error_reports_line_and_column(client) -> None:
    body = _turn(client, "def add(a, b):\n    return a +", "py-func-1").json()
    assert body["tier"] == "edge" and body["check"]["line"] == 2 and body["check"]["column"]


def test_llm_turn_has_reply_tokens_and_cost(service, client) -> None:
    before = service.core_requests()
    r = _turn(client, "What is a denominator?", mode="explain")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] in ("small", "core") and body["model"] in ("tutor-small", "tutor-core")
    assert body["reply"].strip()
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    assert body["cost"]["amount"] > 0
    assert body["reason"].startswith("rules:")
    assert body["latency_ms"]["core"] > 0 and body["latency_ms"]["edge"] > 0 and body["latency_ms"]["memory"] > 0
    assert service.core_requests() == before + 1


def test_complex_question_goes_to_core_and_costs_more(client) -> None:
    hard = _turn(client, "Why does dividing by a fraction make a number bigger? Explain the intuition, prove it "
                         "in general, compare it with dividing by whole numbers and justify every step.").json()
    easy = _turn(client, "what is 1/2?").json()
    assert hard["tier"] == "core" and easy["tier"] == "small"
    per_token = lambda b: b["cost"]["amount"] / b["usage"]["total_tokens"]  # noqa: E731
    assert per_token(hard) > per_token(easy)


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def test_streamed_turn_is_well_formed_and_terminates(service, client) -> None:
    with client.stream("POST", "/v1/tutor/turns", json={
        "learner_id": "learner-1", "session_id": "s-1", "message": "What is a fraction?", "stream": True,
    }) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = _sse_events(text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "route" and kinds[-1] == "done" and "delta" in kinds
    assert set(kinds) <= {"route", "delta", "done"}
    done = events[-1][1]
    assert done["reply"] == "".join(d["text"] for k, d in events if k == "delta")
    assert done["usage"]["completion_tokens"] > 0 and done["cost"]["amount"] > 0


def test_streamed_edge_turn(client) -> None:
    with client.stream("POST", "/v1/tutor/turns", json={
        "learner_id": "l", "session_id": "s", "message": "0.75", "exercise_id": "frac-add-1", "stream": True,
    }) as r:
        events = _sse_events("".join(r.iter_text()))
    assert [k for k, _ in events] == ["route", "delta", "done"] and events[-1][1]["tier"] == "edge"
