"""The OpenAI-compatible surface as the official ``openai`` SDK sees it, on the real FastAPI app in-process
(requests that fail validation never reach a tier, so no engine is needed here; tests/e2e/test_openai_sdk.py
sends the accepted parameters to the real vLLM engine)."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.unit.stand_ins import TEST_PSEUDONYMS
from tutor_cluster.api.app import build_fastapi, build_services
from tutor_cluster.api.auth import hash_key
from tutor_cluster.api.protocol import UNSUPPORTED_PARAMS, ChatCompletionRequest
from tutor_cluster.config.auth import ApiKey
from tutor_cluster.config.settings import load_settings

CHAT_KEY, TUTOR_KEY = "tc-chat-only", "tc-tutor-only"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def http() -> TestClient:
    settings = load_settings(None)
    keys = [ApiKey(id="chat", sha256=hash_key(CHAT_KEY), scopes=["chat"]),
            ApiKey(id="tutor", sha256=hash_key(TUTOR_KEY), scopes=["tutor"])]
    settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"api_keys": keys})})
    # No tier handles: every request here is answered before a tier would be called.
    with TestClient(build_fastapi(build_services(settings, None, None, None, pseudonyms=TEST_PSEUDONYMS))) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(http: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=CHAT_KEY, http_client=http, max_retries=0)


def test_an_invalid_role_is_a_bad_request_naming_the_param(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="auto", messages=[{"role": "wizard", "content": "hi"}])
    assert exc.value.status_code == 400
    assert exc.value.param == "messages[0].role" and exc.value.code == "invalid_value"
    assert exc.value.type == "invalid_request_error"


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"store": True}, "store"),
    ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}, *HI]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0]"),
])
def test_documented_parameters_we_cannot_honour_are_refused_saying_so(sdk: openai.OpenAI, kwargs, param) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(**{"model": "auto", "messages": HI, **kwargs})
    assert exc.value.param == param and exc.value.code == "unsupported_parameter", exc.value.body
    assert "unknown field" not in exc.value.message and f"{param} is not supported: " in exc.value.message


def test_every_documented_parameter_is_known() -> None:
    """OpenAI's documented request parameters: none is an 'unknown field' here."""
    documented = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
                  "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
                  "response_format", "logprobs", "top_logprobs", "user", "store", "metadata", "service_tier",
                  "parallel_tool_calls", *UNSUPPORTED_PARAMS}
    assert documented <= set(ChatCompletionRequest.model_fields)
    ok = ChatCompletionRequest(model="auto", messages=HI, presence_penalty=0.5, frequency_penalty=-0.5,
                               logit_bias={"42": -100}, response_format={"type": "json_object"}, logprobs=True,
                               top_logprobs=2, seed=7, stop="\n", n=1, tool_choice="none", modalities=["text"])
    assert ok.presence_penalty == 0.5 and ok.response_format is not None


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"presence_penalty": 3}, "presence_penalty"), ({"logit_bias": {"x": 1}}, "logit_bias"),
    ({"top_logprobs": 2}, "top_logprobs"), ({"response_format": {"type": "json_schema"}}, "response_format"),
])
def test_bad_sampling_values_are_bad_requests(sdk: openai.OpenAI, kwargs, param) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(**{"model": "auto", "messages": HI, **kwargs})
    assert exc.value.param == param and exc.value.code == "invalid_value"


def test_unknown_fields_and_models(sdk: openai.OpenAI, http: TestClient) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="auto", messages=HI, extra_body={"colour": "red"})
    assert exc.value.param == "colour" and exc.value.code == "unknown_field"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="gpt-17", messages=HI)
    assert missing.value.param == "model" and missing.value.code == "model_not_found"


def test_models_one_by_one(sdk: openai.OpenAI) -> None:
    listed = {m.id: m for m in sdk.models.list()}
    one = sdk.models.retrieve("tutor-core")
    assert one.id == "tutor-core" and one.created == listed["tutor-core"].created > 1_700_000_000
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.models.retrieve("gpt-17")
    assert exc.value.code == "model_not_found"


def test_auth_errors_in_openai_shape(http: TestClient) -> None:
    bad = openai.OpenAI(base_url="http://testserver/v1", api_key="wrong", http_client=http, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.models.list()
    assert exc.value.code == "invalid_api_key" and exc.value.type == "authentication_error"
    tutor_only = openai.OpenAI(base_url="http://testserver/v1", api_key=TUTOR_KEY, http_client=http, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        tutor_only.models.list()
    assert denied.value.code == "insufficient_scope"


def test_openapi_and_docs_need_any_valid_key(http: TestClient) -> None:
    for key in (CHAT_KEY, TUTOR_KEY):
        headers = {"Authorization": f"Bearer {key}"}
        assert http.get("/openapi.json", headers=headers).status_code == 200
        assert http.get("/docs", headers=headers).status_code == 200
    assert http.get("/openapi.json").status_code == 401


def test_tutor_routes_keep_their_shape_and_add_a_code(http: TestClient) -> None:
    r = http.post("/v1/tutor/turns", headers={"Authorization": f"Bearer {TUTOR_KEY}"},
                  json={"learner_id": "l", "session_id": "s", "message": "hi", "colour": "red"})
    assert r.status_code == 422
    assert r.json() == {"error": {"type": "invalid_request", "message": "unknown field 'colour'", "field": "colour",
                                  "code": "unknown_field"}}
