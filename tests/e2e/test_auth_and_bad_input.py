"""Auth and bad input over real HTTP: clear 4xx JSON naming the field, no tier reached, server stays healthy."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

GOOD = {"learner_id": "l", "session_id": "s", "message": "hi"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="},
                                     {"Authorization": "Bearer"}])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/tutor/turns"), ("POST", "/v1/chat/completions"),
                                               ("GET", "/v1/models"), ("GET", "/openapi.json"),
                                               ("GET", "/v1/admin/stats"), ("GET", "/v1/nowhere")])
def test_missing_or_wrong_key_is_401_and_reaches_no_tier(service, headers, method, path) -> None:
    before = service.stats()
    r = httpx.request(method, f"{service.url}{path}", headers=headers, json=GOOD, timeout=30)
    assert r.status_code == 401
    err = r.json()["error"]
    if path.startswith(("/v1/chat", "/v1/models")):  # OpenAI's shape
        assert err["type"] == "authentication_error" and err["param"] == "Authorization"
    else:
        assert err["type"] == "unauthorized" and err["field"] == "Authorization"
    assert err["code"] == "invalid_api_key"
    assert service.stats() == before, "an unauthenticated request reached a tier"


def test_health_needs_no_auth(service) -> None:
    assert httpx.get(f"{service.url}/healthz", timeout=30).json() == {"status": "ok"}
    ready = httpx.get(f"{service.url}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["tiers"]["core"] == {"smollm2": True}


def test_openapi_is_served(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/tutor/turns", "/v1/chat/completions", "/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])


NESTED = "(" * 10_000 + "1" + ")" * 10_000

BAD = [
    # (id, raw body or json, content-type, status, field)
    ("malformed-json", b'{"learner_id": "l",', None, 400, "body"),
    ("not-an-object", b"[1, 2]", None, 422, "body"),
    ("empty-body", b"", None, 400, "body"),
    ("wrong-type", {"learner_id": 5, "session_id": "s", "message": "x"}, None, 422, "learner_id"),
    ("missing-field", {"learner_id": "l", "message": "x"}, None, 422, "session_id"),
    ("empty-message", {"learner_id": "l", "session_id": "s", "message": ""}, None, 422, "message"),
    ("blank-message", {"learner_id": "l", "session_id": "s", "message": "  \n "}, None, 422, "message"),
    ("unknown-field", {**GOOD, "colour": "red"}, None, 422, "colour"),
    ("bad-mode", {**GOOD, "mode": "cheat"}, None, 422, "mode"),
    ("bad-id-chars", {**GOOD, "learner_id": "a b/../c"}, None, 422, "learner_id"),
    ("unknown-exercise", {**GOOD, "exercise_id": "nope"}, None, 422, "exercise_id"),
    ("one-megabyte", b'{"message": "' + b"a" * 1_000_000 + b'"}', None, 413, "body"),
    ("invalid-utf8", b'{"learner_id": "l", "session_id": "s", "message": "\xff\xfe"}', None, 400, "body"),
    ("form-encoded", b"learner_id=l", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ("power-tower", {**GOOD, "exercise_id": "frac-add-1", "message": "9**9**9**9"}, None, 422, "message"),
    ("nested-parens-10k", {**GOOD, "exercise_id": "frac-add-1", "message": NESTED}, None, 422, "message"),
    ("nested-parens-3k", {**GOOD, "exercise_id": "frac-add-1", "message": "(" * 3000 + "1" + ")" * 3000},
     None, 422, "message"),
    ("code-with-nul", {**GOOD, "exercise_id": "py-func-1", "message": "def add(a, b):\x00\n  return a"},
     None, 422, "message"),
    ("huge-int", {**GOOD, "exercise_id": "frac-add-1", "message": "9" * 150 + "^64"}, None, 422, "message"),
]


@pytest.mark.parametrize(("body", "ctype", "status", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_turn_input_gets_clear_4xx(service, client, body, ctype, status, field) -> None:
    before = service.core_requests()
    headers = {"Content-Type": ctype or "application/json"}
    if isinstance(body, bytes):
        r = client.post("/v1/tutor/turns", content=body, headers=headers, timeout=30)
    else:
        r = client.post("/v1/tutor/turns", json=body, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message"] and err["type"]
    assert service.core_requests() == before
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200


TOOL = {"type": "function", "function": {"name": "f", "parameters": {}}}
BAD_CHAT = [  # OpenAI's statuses: an invalid request is 400, as OpenAI and vLLM answer it
    ("no-messages", {"model": "auto", "messages": []}, 400, "messages"),
    ("last-not-user", {"model": "auto", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    ("bad-role", {"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
    ("n-2", {"model": "auto", "n": 2, "messages": [{"role": "user", "content": "hi"}]}, 400, "n"),
    ("tools", {"model": "auto", "tools": [TOOL], "messages": [{"role": "user", "content": "hi"}]}, 400, "tools"),
    ("temperature", {"model": "auto", "temperature": 9, "messages": [{"role": "user", "content": "hi"}]}, 400,
     "temperature"),
    ("unknown-model", {"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "field"), [b[1:] for b in BAD_CHAT], ids=[b[0] for b in BAD_CHAT])
def test_bad_chat_input_gets_clear_4xx(service, client, body, status, field) -> None:
    before = service.core_requests()
    r = client.post("/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == field and err["type"] in ("invalid_request_error", "not_found_error") and err["code"]
    assert service.core_requests() == before


def test_cli_status_reports_every_tier_ready(service) -> None:
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "status"], env=service.env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["ready"] is True and body["url"] == service.url
    net = body["network"]  # the kernel's view of `up` and every process below it
    assert net["loopback_only"] is True and net["exposed"] == [] and net["processes"] > 10 and net["sockets"] > 20
    assert body["tiers"]["edge"] is True and body["tiers"]["core"] == {"smollm2": True}
