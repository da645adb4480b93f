"""The official openai SDK against our server: chat, streaming, models."""

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


def test_unknown_model_is_404_naming_the_field(sdk) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.response.json()["error"]["field"] == "model"


def test_chat_key_cannot_use_tutor_routes(service) -> None:
    import httpx
    r = httpx.post(f"{service.url}/v1/tutor/turns", headers=service.headers(service.chat_key),
                   json={"learner_id": "l", "session_id": "s", "message": "hi"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
