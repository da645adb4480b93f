"""The Gateway: Serve ingress (FastAPI) for API v1. It authenticates (middleware), validates, asks the
edge tier, and streams model answers from the router. It never calls a model itself."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.exceptions import RayError

from tutor_cluster import runtime
from tutor_cluster.api.auth import Principal
from tutor_cluster.api.errors import ApiError
from tutor_cluster.api.learners import LearnerService
from tutor_cluster.api.protocol import (
    ChatCompletionRequest,
    Citation,
    Cost,
    ErrorResponse,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
    TurnRequest,
    TurnResponse,
    Usage,
    render_error,
)
from tutor_cluster.config.settings import Settings
from tutor_cluster.core import prompts
from tutor_cluster.edge.deployment import EdgeRejection
from tutor_cluster.edge.signals import EdgeReply, EdgeResult
from tutor_cluster.errors import StatusError
from tutor_cluster.knowledge.index import Filters
from tutor_cluster.knowledge.retriever import Passage, SearchResult
from tutor_cluster.learner.context import LearnerContext, Preferences
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.routing.budgets import pseudonym
from tutor_cluster.routing.policies import LearnerFeatures
from tutor_cluster.routing.router import CoreRequest
from tutor_cluster.routing.verify import VerifySpec
from tutor_cluster.telemetry.events import EventSink
from tutor_cluster.telemetry.metrics import Metrics
from tutor_cluster.telemetry.recorder import TurnRecorder

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only

API_VERSION = "v1"
LEARNER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
log = logging.getLogger(f"ray.serve.{__name__}")  # under Serve's logger: JSON lines with the request id
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)}
OPENAI_ERRORS = {code: {"model": OpenAIErrorResponse} for code in (400, 401, 403, 404, 413, 429, 502, 503, 504)}
CHAT_PATH = f"/{API_VERSION}/chat/completions"
_LOCAL = Principal(key_id="local", tenant="default", role="admin", scopes=frozenset())


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def request_id() -> str | None:
    """The Serve request id (the client's X-Request-ID, or one Serve made); None outside a request."""
    try:
        from ray.serve.context import _get_serve_request_context

        return _get_serve_request_context().request_id or None
    except Exception:  # noqa: BLE001 - private API: tracing must never fail a request
        return None


def _sse(event: str | None, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


class GatewayService:
    """Request handling, independent of Serve: edge and router are injected handles."""

    def __init__(self, settings: Settings, edge: Any, router: Any, memory: LearnerMemory, knowledge: Any = None,
                 *, clock: Any = time.perf_counter, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self._created = int(time.time())
        self.metrics = metrics or Metrics()
        self.events = EventSink(settings.telemetry.events)
        self.recorder = TurnRecorder(self.metrics, self.events)
        self._edge = edge
        self._router = router
        self._knowledge = knowledge
        self.learners = LearnerService(settings, memory)
        self._clock = clock
        self._timeout = settings.server.request_timeout_s

    # ---------------------------------------------------------------- tiers
    async def _analyse(self, message: str, exercise_id: str | None) -> tuple[EdgeResult, float]:
        t0 = self._clock()
        result = await self._edge.analyse.remote(message, exercise_id)
        if isinstance(result, EdgeRejection):
            raise ApiError(422, "invalid_request", result.message, result.field)
        return result, _ms(self._clock() - t0)

    def _validate_model(self, name: str) -> str | None:
        if name == "auto":
            return None
        if self.settings.catalogue.get(name) is None:
            known = ", ".join(["auto", *(m.name for m in self.settings.catalogue.models)])
            raise ApiError(404, "model_not_found", f"unknown model {name!r}; available: {known}", "model")
        return name

    async def _batches(self, request: CoreRequest) -> AsyncIterator[list[dict[str, Any]]]:
        """The router's events, in the batches it sent (one HTTP write per batch when streaming). A router that
        fails mid-call becomes an ``error`` event (503), like an engine failure."""
        try:
            async for batch in self._router.run.options(stream=True).remote(request):
                yield batch
        except RayError as exc:
            yield [{"type": "error", "status": 503, "message": f"router failed: {type(exc).__name__}"}]

    async def _primed(self, request: CoreRequest) -> AsyncIterator[list[dict[str, Any]]]:
        """The router's stream with its first batch already received: a refusal before any output (budget,
        no model available) becomes a real HTTP status instead of an error event inside a 200 stream."""
        batches = self._batches(request).__aiter__()
        async with asyncio.timeout(self._timeout):
            first = await anext(batches, None)
        for event in first or ():
            if event["type"] == "error":
                raise self._engine_error(event)

        async def replay() -> AsyncIterator[list[dict[str, Any]]]:
            if first:
                yield first
            async for batch in batches:
                yield batch

        return replay()

    async def _collect(self, request: CoreRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A whole (non-streamed) answer: its text, the route event and the done event (with the answer's token
        logprobs under ``logprobs`` when the request asked for them)."""
        text: list[str] = []
        logprobs: list[dict[str, Any]] = []
        route: dict[str, Any] = {}
        done: dict[str, Any] = {}
        async with asyncio.timeout(self._timeout):
            async for batch in self._batches(request):
                for event in batch:
                    kind = event["type"]
                    if kind == "delta":
                        text.append(event["text"])
                        logprobs.extend(event.get("logprobs", ()))
                    elif kind == "route":
                        route = event
                    elif kind == "done":
                        done = event
                    elif kind == "error":
                        raise self._engine_error(event)
        if request.logprobs:
            done = {**done, "logprobs": logprobs}
        return "".join(text), route, done

    # ---------------------------------------------------------------- /v1/tutor/turns
    def _edge_turn(self, turn_id: str, edge: EdgeResult, reply: EdgeReply, pre: dict[str, float],
                   t0: float) -> TurnResponse:
        return TurnResponse(
            turn_id=turn_id, reply=reply.text, tier="edge", model=None, reason=reply.reason,
            intent=edge.signals.intent, skill=edge.signals.skill, check=edge.signals.check,
            usage=Usage(), cost=Cost(amount=0.0, currency=self.settings.catalogue.currency),
            latency_ms={**pre, "router": None, "core": None, "total": _ms(self._clock() - t0)},
        )

    async def _retrieve(self, edge: EdgeResult, ctx: LearnerContext | None) -> tuple[list[Passage], float | None]:
        """Curriculum passages for a model turn, filtered by skill and the learner's grade and language.
        Retrieval is an enrichment: when it fails the turn goes on without it (logged)."""
        if self._knowledge is None or self.settings.knowledge.retrieval.top_k == 0:
            return [], None
        prefs = ctx.preferences if ctx else Preferences()
        filters = Filters(skill=edge.signals.skill, grade=prefs.grade,
                          lang=prefs.language.split("-")[0] if prefs.language else None)
        t0 = self._clock()
        try:
            result = await asyncio.wait_for(self._knowledge.search.remote(edge.signals.text, None, filters), 10)
        except Exception as exc:  # noqa: BLE001 - RAG down must not fail the turn
            log.warning("retrieval skipped: %s: %s", type(exc).__name__, exc)
            return [], None
        return result.passages, _ms(self._clock() - t0)

    def _core_request(self, turn_id: str, body: TurnRequest, edge: EdgeResult, ctx: LearnerContext | None,
                      learner: LearnerFeatures, passages: list[Passage]) -> CoreRequest:
        exercise = self.settings.exercises.get(body.exercise_id) if body.exercise_id else None
        check = edge.signals.check
        messages = prompts.tutor_messages(
            edge.signals.text, mode=body.mode,
            exercise_prompt=exercise.prompt if exercise else None,
            check_detail=check.detail if check else None,
            curriculum=[f"{p.title}{' — ' + p.section if p.section else ''}: {p.text}" for p in passages],
            profile=self.learners.profile(ctx),
        )
        spec = VerifySpec(kind=exercise.kind, answer=exercise.answer, mode=body.mode, solve=exercise.solve,
                          requires_function=exercise.requires_function) if exercise else None
        return CoreRequest(request_id=turn_id, messages=messages, signals=edge.signals, learner=learner, verify=spec)

    async def turn(self, body: TurnRequest, principal: Principal = _LOCAL) -> TurnResponse | AsyncIterator[str]:
        t0 = self._clock()
        turn_id = body.turn_id or uuid.uuid4().hex
        edge, edge_ms = await self._analyse(body.message, body.exercise_id)
        t_mem = self._clock()
        before, after, receipt, change = await self.learners.remember(body, turn_id, edge)
        pre: dict[str, float | None] = {"edge": edge_ms, "memory": _ms(self._clock() - t_mem)}
        trace = request_id()
        extra = {"memory": receipt, "mastery": change, "request_id": trace}
        if edge.reply is not None:
            response = self._edge_turn(turn_id, edge, edge.reply, pre, t0).model_copy(update=extra)
            self.recorder.turn(response, after, body=body, tenant=principal.tenant)
            if body.stream:
                return self._edge_stream(response)
            return response
        passages, pre["retrieval"] = await self._retrieve(edge, after)
        extra["citations"] = [Citation(chunk_id=p.chunk_id, title=p.title, section=p.section, source=p.source,
                                       score=p.score) for p in passages]
        request = self._core_request(turn_id, body, edge, before, self.learners.features(after, edge.signals.skill),
                                     passages).model_copy(update={
            "request_id": trace or turn_id,  # unique per HTTP request: a retried turn id must not clash in vLLM
            "tenant": principal.tenant, "class_id": body.class_id,
            "learner_ref": pseudonym(principal.tenant, body.learner_id)})
        if body.stream:
            return await self._turn_stream(turn_id, request, edge, pre, t0, extra, after, body, principal)
        text, route, done = await self._collect(request)
        response = self._model_turn(turn_id, edge, route, done, text, pre, t0).model_copy(update=extra)
        self.recorder.turn(response, after, done, body=body, tenant=principal.tenant)
        return response

    def _model_turn(self, turn_id: str, edge: EdgeResult, route: dict[str, Any], done: dict[str, Any],
                    text: str, pre: dict[str, float], t0: float) -> TurnResponse:
        timings = done.get("timings_ms", {})
        return TurnResponse(
            turn_id=turn_id, reply=text, tier=route["tier"], model=route["model"], reason=route["reason"],
            intent=edge.signals.intent, skill=edge.signals.skill, check=edge.signals.check,
            usage=Usage(**done.get("usage", {})),
            cost=Cost(amount=done.get("cost", 0.0), currency=done.get("currency", self.settings.catalogue.currency)),
            latency_ms={
                **pre, "router": timings.get("router"), "core": timings.get("core"),
                "core_ttft": timings.get("core_ttft"), "total": _ms(self._clock() - t0),
            },
        )

    async def _edge_stream(self, response: TurnResponse) -> AsyncIterator[str]:
        yield _sse("route", {"tier": "edge", "model": None, "reason": response.reason})
        yield _sse("delta", {"text": response.reply})
        yield _sse("done", response.model_dump())

    async def _render(self, batches: AsyncIterator[list[dict[str, Any]]], render: Callable[[dict[str, Any]], str | None],
                      on_timeout: str, tail: str | None = None) -> AsyncIterator[str]:
        """Stream the router's events as text: one HTTP write per router batch, bounded by the deadline."""
        try:
            async with asyncio.timeout(self._timeout):
                async for batch in batches:
                    out = [text for event in batch if (text := render(event))]
                    if out:
                        yield "".join(out)
        except TimeoutError:
            yield on_timeout
        if tail is not None:
            yield tail

    def _timeout_body(self, path: str = "/v1/tutor/turns") -> dict[str, Any]:
        return render_error(path, 504, "timeout", f"no answer within {self._timeout} s")[1]

    async def _turn_stream(self, turn_id: str, request: CoreRequest, edge: EdgeResult, pre: dict[str, float],
                           t0: float, extra: dict[str, Any], after: LearnerContext, body: TurnRequest,
                           principal: Principal) -> AsyncIterator[str]:
        text: list[str] = []
        route: dict[str, Any] = {}

        def render(event: dict[str, Any]) -> str | None:
            kind = event["type"]
            if kind == "delta":
                text.append(event["text"])
                return _sse("delta", {"text": event["text"]})
            if kind == "route":
                route.update(event)
                return _sse("route", {k: event[k] for k in ("tier", "model", "reason")})
            if kind == "done":
                final = self._model_turn(turn_id, edge, route, event, "".join(text), pre, t0).model_copy(update=extra)
                self.recorder.turn(final, after, event, body=body, tenant=principal.tenant)
                return _sse("done", final.model_dump())
            if kind == "error":
                return _sse("error", self._engine_error(event).body("/v1/tutor/turns"))
            return None

        return self._render(await self._primed(request), render, _sse("error", self._timeout_body()))

    @staticmethod
    def _engine_error(event: dict[str, Any]) -> ApiError:
        status = int(event.get("status", 502))
        retry = {"Retry-After": str(event["retry_after"])} if event.get("retry_after") else {}
        if status == 429:
            return ApiError(429, "budget_exceeded", event["message"], headers=retry)
        if 400 <= status < 500:
            return ApiError(400, "invalid_request", f"the model rejected the request: {event['message']}", "messages",
                            code="rejected_by_model")
        return ApiError(503, "model_unavailable", f"the model tier failed: {event['message']}",
                        headers=retry or {"Retry-After": "1"})

    # ---------------------------------------------------------------- /v1/chat/completions
    async def chat(self, body: ChatCompletionRequest,
                   principal: Principal = _LOCAL) -> dict[str, Any] | AsyncIterator[str]:
        t0 = self._clock()
        pinned = self._validate_model(body.model)
        last = body.messages[-1]
        edge, edge_ms = await self._analyse(last.text(), body.exercise_id)
        chat_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model_name = body.model
        if edge.reply is not None:
            turn = self._edge_turn(chat_id, edge, edge.reply, {"edge": edge_ms}, t0)
            ext = {"tier": "edge", "reason": turn.reason, "cost": 0.0, "latency_ms": turn.latency_ms}
            if body.stream:
                return self._chat_stream_static(chat_id, created, model_name, turn.reply, ext, body)
            return self._completion(chat_id, created, model_name, turn.reply, "stop", Usage(), ext)
        messages = [{"role": m.role if m.role != "developer" else "system", "content": m.text()}
                    for m in body.messages[:-1]]
        messages.append({"role": "user", "content": edge.signals.text})
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        request = CoreRequest(
            request_id=chat_id, messages=prompts.chat_messages(messages, mode=body.mode), signals=edge.signals,
            model=pinned, max_tokens=body.max_completion_tokens or body.max_tokens,
            temperature=body.temperature, top_p=body.top_p, stop=stop, seed=body.seed,
            presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
            logit_bias=body.logit_bias, logprobs=body.logprobs, top_logprobs=body.top_logprobs,
            response_format=body.response_format.model_dump(exclude_none=True) if body.response_format else None,
            tenant=principal.tenant, learner_ref=pseudonym(principal.tenant, body.user) if body.user else None,
        )
        if body.stream:
            return await self._chat_stream(chat_id, created, request, body, edge_ms, t0)
        text, route, done = await self._collect(request)
        self.recorder.model(done)
        ext = self._chat_ext(route, done, edge_ms, t0)
        name = model_name if pinned else route.get("model", model_name)
        return self._completion(chat_id, created, name, text, done.get("finish_reason", "stop"),
                                Usage(**done.get("usage", {})), ext, done.get("logprobs"))

    def _chat_ext(self, route: dict[str, Any], done: dict[str, Any], edge_ms: float, t0: float) -> dict[str, Any]:
        timings = done.get("timings_ms", {})
        return {
            "tier": route.get("tier"), "reason": route.get("reason"), "cost": done.get("cost", 0.0),
            "latency_ms": {"edge": edge_ms, **timings, "total": _ms(self._clock() - t0)},
        }

    @staticmethod
    def _completion(chat_id: str, created: int, model: str, text: str, finish: str, usage: Usage,
                    ext: dict[str, Any], logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                  "logprobs": {"content": logprobs} if logprobs is not None else None}
        return {"id": chat_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [choice], "usage": usage.model_dump(), "tutor": ext}

    @staticmethod
    def _chunk(chat_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
               logprobs: list[dict[str, Any]] | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish,
                  "logprobs": {"content": logprobs} if logprobs is not None else None}
        body = {"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [choice], **extra}
        return _sse(None, body)

    async def _chat_stream_static(self, chat_id: str, created: int, model: str, text: str, ext: dict[str, Any],
                                  body: ChatCompletionRequest) -> AsyncIterator[str]:
        yield self._chunk(chat_id, created, model, {"role": "assistant", "content": text})
        yield self._chunk(chat_id, created, model, {}, "stop", tutor=ext)
        if body.stream_options and body.stream_options.include_usage:
            yield _sse(None, {"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                              "choices": [], "usage": Usage().model_dump()})
        yield _sse(None, "[DONE]")

    async def _chat_stream(self, chat_id: str, created: int, request: CoreRequest, body: ChatCompletionRequest,
                           edge_ms: float, t0: float) -> AsyncIterator[str]:
        state: dict[str, Any] = {"model": body.model, "route": {}, "first": True}
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def render(event: dict[str, Any]) -> str | None:
            kind, model = event["type"], state["model"]
            if kind == "route":
                state["route"] = event
                state["model"] = body.model if request.model else event["model"]
                return None
            if kind == "delta":
                delta = {"content": event["text"]}
                if state["first"]:
                    delta, state["first"] = {"role": "assistant", **delta}, False
                logprobs = event.get("logprobs", []) if body.logprobs else None
                return self._chunk(chat_id, created, model, delta, logprobs=logprobs)
            if kind == "done":
                self.recorder.model(event)
                out = self._chunk(chat_id, created, model, {}, event.get("finish_reason", "stop"),
                                  tutor=self._chat_ext(state["route"], event, edge_ms, t0))
                if include_usage:
                    out += _sse(None, {"id": chat_id, "object": "chat.completion.chunk", "created": created,
                                       "model": model, "choices": [], "usage": event["usage"]})
                return out
            if kind == "error":
                return _sse(None, self._engine_error(event).body(CHAT_PATH))
            return None

        return self._render(await self._primed(request), render, _sse(None, self._timeout_body(CHAT_PATH)),
                            tail=_sse(None, "[DONE]"))

    # ---------------------------------------------------------------- /v1/curriculum/search
    async def search(self, query: str, k: int, filters: Filters) -> SearchResult:
        if self._knowledge is None:
            raise ApiError(404, "not_found", "curriculum search is off (knowledge.enabled: false)")
        try:
            return await asyncio.wait_for(self._knowledge.search.remote(query, k, filters), self._timeout)
        except StatusError as exc:
            raise ApiError(exc.status, "curriculum_unavailable", exc.message, headers={"Retry-After": "5"}) from None
        except RayError as exc:
            raise ApiError(503, "curriculum_unavailable", f"the knowledge tier failed: {type(exc).__name__}",
                           headers={"Retry-After": "5"}) from None

    def models(self) -> ModelList:
        """'auto' and the catalogue; ``created`` is when this gateway loaded the catalogue."""
        cards = [ModelCard(id="auto", tier=None, created=self._created)]
        cards += [
            ModelCard(id=m.name, tier=m.tier, context_length=m.context_length, created=self._created,
                      price_per_1k_input=m.price_per_1k_input, price_per_1k_output=m.price_per_1k_output)
            for m in self.settings.catalogue.models
        ]
        return ModelList(data=cards)

    def model(self, model_id: str) -> ModelCard:
        for card in self.models().data:
            if card.id == model_id:
                return card
        raise ApiError(404, "model_not_found", f"unknown model {model_id!r}; GET /v1/models lists them", "model")

    async def stats(self) -> dict[str, Any]:
        """Counters of the tiers (of the replicas these calls reach)."""
        out = {"edge": await self._edge.stats.remote(), "core": await self._router.engine_stats.remote(),
               "memory": await self.learners.stats()}
        if self._knowledge is not None:
            out["knowledge"] = await self._knowledge.status.remote()
        return out

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        tiers: dict[str, Any] = {}
        try:
            tiers["edge"] = bool(await asyncio.wait_for(self._edge.ready.remote(), 5))
        except Exception:  # noqa: BLE001 - not ready, whatever the cause
            tiers["edge"] = False
        try:
            engines = await asyncio.wait_for(self._router.ready.remote(), 10)
            tiers["router"] = True
            tiers["core"] = engines
        except Exception:  # noqa: BLE001
            tiers["router"] = False
            tiers["core"] = {}
        try:
            tiers["memory"] = await asyncio.wait_for(self.learners.ready(), 5)
        except Exception:  # noqa: BLE001
            tiers["memory"] = False
        ok = (tiers["edge"] and tiers["router"] and tiers["memory"] and bool(tiers["core"])
              and all(tiers["core"].values()))
        return ok, tiers


@serve.deployment(name="gateway")
@serve.ingress()
class Gateway:
    """Serve ingress: builds the FastAPI app once the handles are injected."""

    def __init__(self, settings: Settings, edge: Any, router: Any, memory: LearnerMemory,
                 knowledge: Any = None) -> None:
        self._service = GatewayService(settings, edge, router, memory, knowledge)
        self._service.events.start()

    def __serve_build_asgi_app__(self) -> FastAPI:
        from tutor_cluster.api.routes import build_fastapi

        return build_fastapi(self._service)

    def __del__(self) -> None:  # Serve calls it when the replica shuts down: write buffered events
        self._service.events.close()
