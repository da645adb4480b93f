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

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.exceptions import RayError

from tutor_cluster.errors import StatusError

from tutor_cluster.api.auth import Authenticator, Principal
from tutor_cluster.api.errors import ApiError, install_error_handlers
from tutor_cluster.api.learners import LearnerService
from tutor_cluster.api.middleware import GatewayMiddleware
from tutor_cluster.api.protocol import (
    ChatCompletionRequest,
    Citation,
    Cost,
    ErrorResponse,
    LearnerView,
    ModelCard,
    ModelList,
    TurnRequest,
    TurnResponse,
    Usage,
    error_body,
)
from tutor_cluster.config.settings import Settings
from tutor_cluster.core import prompts
from tutor_cluster.edge.deployment import EdgeRejection
from tutor_cluster.edge.signals import EdgeReply, EdgeResult
from tutor_cluster.knowledge.index import Filters
from tutor_cluster.knowledge.retriever import Passage, SearchResult
from tutor_cluster.learner.context import LearnerContext, Preferences
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.learner.policies import Recommendation
from tutor_cluster.routing.budgets import pseudonym
from tutor_cluster.routing.policies import LearnerFeatures
from tutor_cluster.routing.router import CoreRequest
from tutor_cluster.routing.verify import VerifySpec
from tutor_cluster.telemetry.http import MetricsMiddleware
from tutor_cluster.telemetry.events import EventSink
from tutor_cluster.telemetry.metrics import Metrics

API_VERSION = "v1"
LEARNER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
log = logging.getLogger(f"ray.serve.{__name__}")  # under Serve's logger: JSON lines with the request id
_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)}
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
        self.metrics = metrics or Metrics()
        self.events = EventSink(settings.telemetry.events)
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
        """A whole (non-streamed) answer: its text, the route event and the done event."""
        text: list[str] = []
        route: dict[str, Any] = {}
        done: dict[str, Any] = {}
        async with asyncio.timeout(self._timeout):
            async for batch in self._batches(request):
                for event in batch:
                    kind = event["type"]
                    if kind == "delta":
                        text.append(event["text"])
                    elif kind == "route":
                        route = event
                    elif kind == "done":
                        done = event
                    elif kind == "error":
                        raise self._engine_error(event)
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
            self._record_turn(response, after, body=body, principal=principal)
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
        self._record_turn(response, after, done, body=body, principal=principal)
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

    # ---------------------------------------------------------------- metrics
    def _record_model(self, done: dict[str, Any]) -> None:
        """Tokens, cost, TTFT and alerts of one model interaction (the router's done event)."""
        model, tier = done.get("model", "-"), done.get("tier", "-")
        usage = done.get("usage", {})
        m = self.metrics
        m.inc("tutor_tokens", usage.get("prompt_tokens", 0), model=model, kind="prompt")
        m.inc("tutor_tokens", usage.get("completion_tokens", 0), model=model, kind="completion")
        m.inc("tutor_cost", done.get("cost", 0.0), model=model, tier=tier)
        ttft = done.get("timings_ms", {}).get("core_ttft")
        if ttft is not None:
            m.observe("tutor_ttft_seconds", ttft / 1000, model=model)
        for rule in done.get("budget_alerts", ()):
            m.inc("tutor_budget_alerts", rule=rule)

    def _record_turn(self, r: TurnResponse, after: LearnerContext | None, done: dict[str, Any] | None = None,
                     *, body: TurnRequest, principal: Principal) -> None:
        """Metrics of one tutoring turn (labels: tier, model, skill — no learner ids) and its analytics event
        (pseudonymous learner and session)."""
        self._record_metrics(r, after, done)
        change = r.mastery
        state = after.skills.get(r.skill) if after and r.skill else None
        self.events.add({
            "at": time.time(), "turn_id": r.turn_id, "tenant": principal.tenant,
            "learner": pseudonym(principal.tenant, body.learner_id),
            "session": pseudonym(principal.tenant, f"session:{body.session_id}"), "skill": r.skill,
            "intent": r.intent, "exercise_id": body.exercise_id, "tier": r.tier, "model": r.model,
            "correct": r.check.correct if r.check else None, "misconceptions": r.check.misconceptions if r.check else [],
            "hint": r.intent == "hint_request" or (r.tier == "edge" and "Hint:" in r.reply),
            "mastery_before": change.before if change else None, "mastery_after": change.after if change else None,
            "mastered": change.mastered if change else None, "attempts": state.attempts if state else None,
            "cost": r.cost.amount, "prompt_tokens": r.usage.prompt_tokens,
            "completion_tokens": r.usage.completion_tokens, "citations": len(r.citations),
            "latency_total_ms": r.latency_ms.get("total"), "latency_edge_ms": r.latency_ms.get("edge"),
            "latency_core_ms": r.latency_ms.get("core"),
        })

    def _record_metrics(self, r: TurnResponse, after: LearnerContext | None, done: dict[str, Any] | None) -> None:
        m = self.metrics
        m.inc("tutor_turns", tier=r.tier, model=r.model or "-")
        for tier, ms in r.latency_ms.items():
            if ms is not None and tier not in ("total", "core_ttft"):
                m.observe("tutor_tier_latency_seconds", ms / 1000, tier=tier)
        if done is not None:
            self._record_model(done)
        m.inc("tutor_retrieval_passages", len(r.citations))
        skill = r.skill or "unknown"
        if r.check is not None and r.check.correct is not None:
            m.inc("tutor_attempts", skill=skill, correct=str(r.check.correct).lower())
            for tag in r.check.misconceptions:
                m.inc("tutor_misconceptions", skill=skill, tag=tag)
        if r.intent == "hint_request" or (r.tier == "edge" and "Hint:" in r.reply):
            m.inc("tutor_hints", skill=skill)
        change = r.mastery
        if change is not None and change.mastered and change.before < change.threshold:
            m.inc("tutor_mastery_transitions", skill=change.skill)
            state = after.skills.get(change.skill) if after else None
            if state is not None:
                m.observe("tutor_attempts_to_mastery", state.attempts, skill=change.skill)

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

    def _timeout_body(self) -> dict[str, Any]:
        return error_body("timeout", f"no answer within {self._timeout} s")

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
                self._record_turn(final, after, event, body=body, principal=principal)
                return _sse("done", final.model_dump())
            if kind == "error":
                err = self._engine_error(event)
                return _sse("error", error_body(err.type, err.message, err.field))
            return None

        return self._render(await self._primed(request), render, _sse("error", self._timeout_body()))

    @staticmethod
    def _engine_error(event: dict[str, Any]) -> ApiError:
        status = int(event.get("status", 502))
        retry = {"Retry-After": str(event["retry_after"])} if event.get("retry_after") else {}
        if status == 429:
            return ApiError(429, "budget_exceeded", event["message"], headers=retry)
        if 400 <= status < 500:
            return ApiError(400, "invalid_request", f"the model rejected the request: {event['message']}", "messages")
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
            temperature=body.temperature, top_p=body.top_p, stop=stop, seed=body.seed, tenant=principal.tenant,
            learner_ref=pseudonym(principal.tenant, body.user) if body.user else None,
        )
        if body.stream:
            return await self._chat_stream(chat_id, created, request, body, edge_ms, t0)
        text, route, done = await self._collect(request)
        self._record_model(done)
        ext = self._chat_ext(route, done, edge_ms, t0)
        name = model_name if pinned else route.get("model", model_name)
        return self._completion(chat_id, created, name, text, done.get("finish_reason", "stop"),
                                Usage(**done.get("usage", {})), ext)

    def _chat_ext(self, route: dict[str, Any], done: dict[str, Any], edge_ms: float, t0: float) -> dict[str, Any]:
        timings = done.get("timings_ms", {})
        return {
            "tier": route.get("tier"), "reason": route.get("reason"), "cost": done.get("cost", 0.0),
            "latency_ms": {"edge": edge_ms, **timings, "total": _ms(self._clock() - t0)},
        }

    @staticmethod
    def _completion(chat_id: str, created: int, model: str, text: str, finish: str, usage: Usage,
                    ext: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": chat_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": usage.model_dump(), "tutor": ext,
        }

    @staticmethod
    def _chunk(chat_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
               **extra: Any) -> str:
        body = {"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
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
                return self._chunk(chat_id, created, model, delta)
            if kind == "done":
                self._record_model(event)
                out = self._chunk(chat_id, created, model, {}, event.get("finish_reason", "stop"),
                                  tutor=self._chat_ext(state["route"], event, edge_ms, t0))
                if include_usage:
                    out += _sse(None, {"id": chat_id, "object": "chat.completion.chunk", "created": created,
                                       "model": model, "choices": [], "usage": event["usage"]})
                return out
            if kind == "error":
                err = self._engine_error(event)
                return _sse(None, error_body(err.type, err.message, err.field))
            return None

        return self._render(await self._primed(request), render, _sse(None, self._timeout_body()),
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
        cards = [ModelCard(id="auto", tier=None)]
        cards += [
            ModelCard(id=m.name, tier=m.tier, context_length=m.context_length,
                      price_per_1k_input=m.price_per_1k_input, price_per_1k_output=m.price_per_1k_output)
            for m in self.settings.catalogue.models
        ]
        return ModelList(data=cards)

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


def build_fastapi(service: GatewayService) -> FastAPI:
    """The HTTP app; its routes close over ``service``."""
    settings = service.settings
    app = FastAPI(
        title="tutor-cluster", version="0.1.0", docs_url=None, redoc_url=None,
        description="Distributed AI tutoring API. Every route except /healthz and /readyz needs "
                    "'Authorization: Bearer <api key>'.",
    )
    app.add_middleware(GatewayMiddleware, authenticator=Authenticator(settings.auth),
                       max_body_bytes=settings.server.max_body_bytes)

    install_error_handlers(app, settings.server.request_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # added last: outermost, sees auth refusals

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the gateway process answers. No auth."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a tier is not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: every tier (edge, router, each core engine) answers. No auth."""
        ok, tiers = await service.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", "tiers": tiers}, status_code=200 if ok else 503)

    @app.post(f"/{API_VERSION}/tutor/turns", response_model=TurnResponse, responses=_ERRORS, tags=["tutor"])
    async def tutor_turn(body: TurnRequest, http: Request) -> Any:
        """One tutoring turn. With ``stream: true`` the answer comes as server-sent events:
        ``route``, then ``delta`` (text) events, then ``done`` (the full TurnResponse) or ``error``."""
        result = await service.turn(body, http.state.principal)
        if isinstance(result, TurnResponse):
            return result
        return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post(f"/{API_VERSION}/chat/completions", responses=_ERRORS, tags=["openai"])
    async def chat_completions(body: ChatCompletionRequest, http: Request) -> Any:
        """OpenAI-compatible chat completions through the same edge → router path."""
        result = await service.chat(body, http.state.principal)
        if isinstance(result, dict):
            return JSONResponse(result)
        return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get(f"/{API_VERSION}/curriculum/search", response_model=SearchResult, responses=_ERRORS, tags=["curriculum"])
    async def curriculum_search(
        q: str = Query(min_length=1, max_length=512, description="What to look for."),
        k: int = Query(default=5, ge=1, le=20, description="How many passages."),
        skill: str | None = Query(default=None, pattern=LEARNER_ID_PATTERN, description="Only this skill."),
        grade: int | None = Query(default=None, ge=0, le=13, description="Only this grade."),
        locale: str | None = Query(default=None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", description="Language."),
    ) -> SearchResult:
        """Search the live curriculum version (the passages a core turn would be grounded on)."""
        if not q.strip():
            raise ApiError(422, "invalid_request", "q: must not be blank", "q")
        filters = Filters(skill=skill, grade=grade, lang=locale.split("-")[0] if locale else None)
        return await service.search(q, k, filters)

    @app.get(f"/{API_VERSION}/models", response_model=ModelList, responses=_ERRORS, tags=["openai"])
    async def list_models() -> ModelList:
        """The model catalogue ('auto' lets the router choose)."""
        return service.models()

    learner_id_path = Path(pattern=LEARNER_ID_PATTERN, description="The learner.")

    @app.get(f"/{API_VERSION}/learners/{{learner_id}}", response_model=LearnerView, responses=_ERRORS,
             tags=["learners"])
    async def get_learner(learner_id: str = learner_id_path) -> LearnerView:
        """Mastery per skill, misconceptions, preferences and recent turns."""
        return await service.learners.learner(learner_id)

    @app.patch(f"/{API_VERSION}/learners/{{learner_id}}/preferences", response_model=LearnerView,
               responses=_ERRORS, tags=["learners"])
    async def patch_preferences(body: Preferences, learner_id: str = learner_id_path,
                                idempotency_key: str | None = Header(default=None, pattern=LEARNER_ID_PATTERN)) -> LearnerView:
        """Set learning style, pace or language (fields sent replace stored ones; null clears)."""
        return await service.learners.set_preferences(learner_id, body, idempotency_key)

    @app.get(f"/{API_VERSION}/learners/{{learner_id}}/next-exercise", response_model=Recommendation,
             responses=_ERRORS, tags=["learners"])
    async def next_exercise(learner_id: str = learner_id_path) -> Recommendation:
        """The exercise to do next, by the configured policy (default: lowest unmastered skill)."""
        return await service.learners.next_exercise(learner_id)

    @app.get(f"/{API_VERSION}/admin/stats", responses=_ERRORS, tags=["admin"])
    async def admin_stats() -> dict[str, Any]:
        """Request counters per tier (admin scope): what reached the edge and each core engine; the live
        curriculum version the knowledge replica serves."""
        return await service.stats()

    return app


@serve.deployment(name="gateway")
@serve.ingress()
class Gateway:
    """Serve ingress: builds the FastAPI app once the handles are injected."""

    def __init__(self, settings: Settings, edge: Any, router: Any, knowledge: Any = None) -> None:
        memory = LearnerMemory(settings.learner, namespace=settings.ray.namespace)
        self._service = GatewayService(settings, edge, router, memory, knowledge)
        self._service.events.start()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi(self._service)

    def __del__(self) -> None:  # Serve calls it when the replica shuts down: write buffered events
        self._service.events.close()
