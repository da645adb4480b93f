"""The OpenAI-compatible routes: ``POST /v1/chat/completions`` (the HTTP face of
:class:`~tutor_cluster.turns.chat.ChatService`) and ``GET /v1/models[/{id}]``. Bodies, chunks and errors are
OpenAI's shapes, so the official SDKs work unchanged; tutor-cluster's own data rides in a ``tutor`` field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tutor_cluster.api import sse
from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import OPENAI_ERRORS, ChatCompletionRequest, ModelCard, ModelList
from tutor_cluster.config.catalogue import Catalogue
from tutor_cluster.errors import NotFound
from tutor_cluster.routing.events import DeltaEvent, RouteEvent
from tutor_cluster.routing.requests import SAMPLING_PARAMS
from tutor_cluster.turns.chat import ChatService
from tutor_cluster.turns.types import ChatAnswer, ChatDone, ChatInput, ChatStream, Usage

PATH = "/v1/chat/completions"
DONE = sse.sse(None, "[DONE]")


def chat_input(body: ChatCompletionRequest) -> ChatInput:
    """The request as the chat service takes it: text messages (``developer`` is ``system`` to the engine) and the
    sampling parameters the client set."""
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    sampling: dict[str, Any] = {}
    for name in SAMPLING_PARAMS:
        value = getattr(body, name)
        if value is not None:
            sampling[name] = value
    if isinstance(body.stop, str):
        sampling["stop"] = [body.stop]
    if body.response_format is not None:
        sampling["response_format"] = body.response_format.model_dump(exclude_none=True)
    return ChatInput(messages=messages, model=body.model, exercise_id=body.exercise_id, mode=body.mode,
                     user=body.user, max_tokens=body.max_completion_tokens or body.max_tokens, sampling=sampling)


def _choice(logprobs: list[dict[str, Any]] | None, **fields: Any) -> dict[str, Any]:
    return {"index": 0, **fields, "logprobs": {"content": logprobs} if logprobs is not None else None}


def completion(answer: ChatAnswer) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    choice = _choice(answer.logprobs, message={"role": "assistant", "content": answer.text},
                     finish_reason=answer.finish_reason)
    return {"id": answer.id, "object": "chat.completion", "created": answer.created, "model": answer.model,
            "choices": [choice], "usage": answer.usage.model_dump(), "tutor": answer.tutor}


def _chunk(cid: str, created: int, model: str, choices: list[dict[str, Any]], **extra: Any) -> str:
    return sse.sse(None, {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                          "choices": choices, **extra})


async def _answer_as_chunks(answer: ChatAnswer, include_usage: bool) -> AsyncIterator[str]:
    """A whole answer (the edge's) as the chunks a streaming client expects."""
    yield _chunk(answer.id, answer.created, answer.model,
                 [_choice(None, delta={"role": "assistant", "content": answer.text}, finish_reason=None)])
    yield _chunk(answer.id, answer.created, answer.model, [_choice(None, delta={}, finish_reason="stop")],
                 tutor=answer.tutor)
    if include_usage:
        yield _chunk(answer.id, answer.created, answer.model, [], usage=Usage().model_dump())
    yield DONE


def _chunks(stream: ChatStream, logprobs: bool, include_usage: bool, timeout_s: float) -> AsyncIterator[str]:
    state = {"model": stream.model, "first": True}

    def render(event: RouteEvent | DeltaEvent | ChatDone) -> str | None:
        if isinstance(event, RouteEvent):
            if stream.model == "auto":  # the router chose: chunks name the model that answers
                state["model"] = event.model
            return None
        if isinstance(event, DeltaEvent):
            delta: dict[str, Any] = {"content": event.text}
            if state["first"]:
                delta, state["first"] = {"role": "assistant", **delta}, False
            lp = (event.logprobs or []) if logprobs else None
            return _chunk(stream.id, stream.created, state["model"], [_choice(lp, delta=delta, finish_reason=None)])
        end = _choice(None, delta={}, finish_reason=event.finish_reason)
        out = _chunk(stream.id, stream.created, event.model, [end], tutor=event.tutor)
        if include_usage:
            out += _chunk(stream.id, stream.created, event.model, [], usage=event.usage.model_dump())
        return out

    return sse.render(stream.events, render, path=PATH, error_event=None, timeout_s=timeout_s, tail=DONE)


def model_list(catalogue: Catalogue, created: int) -> ModelList:
    """'auto' and the catalogue; ``created`` is when this gateway loaded the catalogue."""
    cards = [ModelCard(id="auto", tier=None, created=created)]
    cards += [ModelCard(id=m.name, tier=m.tier, context_length=m.context_length, created=created,
                        price_per_1k_input=m.price_per_1k_input, price_per_1k_output=m.price_per_1k_output)
              for m in catalogue.models]
    return ModelList(data=cards)


def routes(chat: ChatService, catalogue: Catalogue, created: int, timeout_s: float) -> APIRouter:
    router = APIRouter(tags=["openai"])

    @router.post(PATH, responses=OPENAI_ERRORS, dependencies=[allow("POST /v1/chat/completions")])
    async def chat_completions(body: ChatCompletionRequest, http: Request) -> Any:
        """OpenAI-compatible chat completions through the same edge → router path."""
        result = await chat.chat(chat_input(body), http.state.principal, stream=body.stream)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        if isinstance(result, ChatAnswer):
            if body.stream:
                return sse.response(_answer_as_chunks(result, include_usage))
            return JSONResponse(completion(result))
        return sse.response(_chunks(result, bool(body.logprobs), include_usage, timeout_s))

    @router.get("/v1/models", response_model=ModelList, responses=OPENAI_ERRORS,
                dependencies=[allow("GET /v1/models")])
    async def list_models() -> ModelList:
        """The model catalogue ('auto' lets the router choose)."""
        return model_list(catalogue, created)

    @router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=OPENAI_ERRORS,
                dependencies=[allow("GET /v1/models/{model_id}")])
    async def get_model(model_id: str) -> ModelCard:
        """One model of the catalogue (404 ``model_not_found`` otherwise)."""
        for card in model_list(catalogue, created).data:
            if card.id == model_id:
                return card
        raise NotFound(f"unknown model {model_id!r}; GET /v1/models lists them", kind="model_not_found",
                       field="model")

    return router
