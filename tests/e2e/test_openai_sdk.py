"""The official openai SDK against our server: chat, streaming, models."""

import json

import openai
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sdk(service):
    return openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.chat_key, max_retries=0, timeout=120)


def test_models_list(sdk) -> None:
    ids = {m.id for m in sdk.models.list()}
    assert {"auto", "tutor-small", "tutor-core"} <= ids


def test_chat_completion(sdk) -> None:
    r = sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "What is 1/2 + 1/4?"}],
                                    max_tokens=24)
    assert r.choices[0].message.content.strip()
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
    assert r.model in ("tutor-small", "tutor-core")


def test_chat_streaming_with_usage(sdk) -> None:
    stream = sdk.chat.completions.create(
        model="tutor-core", messages=[{"role": "user", "content": "Say hello to a learner."}], max_tokens=16,
        stream=True, stream_options={"include_usage": True},
    )
    parts, usage, finish = [], None, None
    for chunk in stream:
        assert chunk.model == "tutor-core"
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts).strip() and finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0


def test_unknown_model_is_404_naming_the_param(sdk) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.param == "model" and exc.value.code == "model_not_found"


def test_invalid_role_is_a_bad_request_with_param(sdk) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="auto", messages=[{"role": "wizard", "content": "hi"}])
    assert exc.value.param == "messages[0].role"


def test_sampling_parameters_reach_the_engine(sdk) -> None:
    """Penalties, seed, logit_bias and logprobs go to vLLM; the answer carries one logprob entry per token."""
    r = sdk.chat.completions.create(
        model="tutor-core", messages=[{"role": "user", "content": "Name a fraction."}], max_tokens=8,
        presence_penalty=0.5, frequency_penalty=0.5, seed=7, logit_bias={"0": -100}, logprobs=True, top_logprobs=2,
    )
    content = r.choices[0].logprobs.content
    assert r.choices[0].message.content and 0 < len(content) <= r.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    stream = sdk.chat.completions.create(
        model="tutor-core", messages=[{"role": "user", "content": "Name a fraction."}], max_tokens=8, seed=7,
        presence_penalty=0.5, logprobs=True, top_logprobs=1, stream=True,
    )
    streamed = [t for chunk in stream if chunk.choices and chunk.choices[0].logprobs
                for t in chunk.choices[0].logprobs.content]
    assert streamed and all(len(t.top_logprobs) == 1 for t in streamed)


def test_json_mode_reaches_the_engine(sdk) -> None:
    r = sdk.chat.completions.create(
        model="tutor-core", max_tokens=40, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": 'Answer in JSON: {"half": <the decimal value of 1/2>}'}],
    )
    assert r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content is not None
    if r.choices[0].finish_reason == "stop":  # guided decoding: a finished answer is JSON
        json.loads(r.choices[0].message.content)


def test_model_retrieve(sdk) -> None:
    model = sdk.models.retrieve("tutor-small")
    assert model.id == "tutor-small" and model.created > 0


def test_chat_key_cannot_use_tutor_routes(service) -> None:
    import httpx
    r = httpx.post(f"{service.url}/v1/tutor/turns", headers=service.headers(service.chat_key),
                   json={"learner_id": "l", "session_id": "s", "message": "hi"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
