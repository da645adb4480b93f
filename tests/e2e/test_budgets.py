"""Budgets through HTTP on the real service (Redis counters): a class whose budget cannot pay for a core turn
gets 429 + Retry-After (JSON and streaming alike) or, in downgrade mode, an answer from the small tier."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import DOWNGRADE_CLASS, REJECT_CLASS

pytestmark = pytest.mark.integration

HARD = ("Why does dividing by a fraction make a number bigger? Explain the intuition, prove it in general, "
        "compare it with dividing by whole numbers and justify every step.")


def _turn(client: httpx.Client, message: str, class_id: str | None, **extra: object) -> httpx.Response:
    body = {"learner_id": "budget-l1", "session_id": "s", "message": message, "mode": "explain", **extra}
    if class_id:
        body["class_id"] = class_id
    return client.post("/v1/tutor/turns", json=body)


def test_reject_mode_is_429_with_retry_after(client: httpx.Client) -> None:
    r = _turn(client, HARD, REJECT_CLASS)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "budget_exceeded" and f"class:{REJECT_CLASS}:day" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 86_400

    streamed = _turn(client, HARD, REJECT_CLASS, stream=True)  # refused before the stream starts: a real 429
    assert streamed.status_code == 429 and streamed.headers["content-type"].startswith("application/json")

    easy = _turn(client, "what is 1/2?", REJECT_CLASS)  # a small-tier turn fits the same budget
    assert easy.status_code == 200 and easy.json()["tier"] == "small"


def test_downgrade_mode_answers_from_the_small_tier(client: httpx.Client) -> None:
    r = _turn(client, HARD, DOWNGRADE_CLASS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "small" and body["model"] == "tutor-small"
    assert "downgraded from tutor-core" in body["reason"]
    unlimited = _turn(client, HARD, None)
    assert unlimited.status_code == 200 and unlimited.json()["tier"] == "core"


def test_class_id_is_validated(client: httpx.Client) -> None:
    r = _turn(client, "hi", "bad class id!")
    assert r.status_code == 422 and r.json()["error"]["field"] == "class_id"
