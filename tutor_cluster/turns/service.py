"""The turn service: one tutoring turn, step by step, with no HTTP in it.

    edge analysis (``edge/``) → learner memory (``turns/learners.py``) → retrieval (``knowledge/``)
    → the router's answer (``turns/answers.py`` → ``routing/router.py``) → the result, recorded (``turns/recorder.py``)

An answer the edge can settle (a checked exercise, a refusal) never reaches a model. Tiers are injected as Serve
handles (or anything with the same ``.remote`` methods), so the service runs in-process in tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from ray.serve.exceptions import BackPressureError

from tutor_cluster import runtime
from tutor_cluster.config.settings import Settings
from tutor_cluster.core import prompts
from tutor_cluster.edge.grading import with_hint
from tutor_cluster.edge.signals import EdgeRejection, EdgeReply, EdgeResult
from tutor_cluster.errors import InvalidInput, Unavailable
from tutor_cluster.identity import Principal
from tutor_cluster.knowledge.index import Filters
from tutor_cluster.knowledge.retriever import Passage
from tutor_cluster.learner.context import LearnerContext, Preferences
from tutor_cluster.routing.events import DeltaEvent, DoneEvent, RouteEvent
from tutor_cluster.routing.requests import CoreRequest
from tutor_cluster.routing.verify import VerifySpec
from tutor_cluster.turns.answers import Answers, overloaded
from tutor_cluster.turns.learners import LearnerRef, LearnerService
from tutor_cluster.turns.recorder import TurnRecorder
from tutor_cluster.turns.types import (
    Citation,
    Cost,
    TurnDone,
    TurnRequest,
    TurnResult,
    TurnStream,
    Usage,
)

log = logging.getLogger(f"ray.serve.{__name__}")  # under Serve's logger: JSON lines with the request id
#: Seconds retrieval may take before a turn goes on without curriculum passages.
RETRIEVAL_TIMEOUT_S = 10


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Tiers:
    """The tiers a turn passes through, and what every step shares: settings, clock, recorder, tracing."""

    def __init__(self, settings: Settings, edge: Any, router: Any, learners: LearnerService, knowledge: Any,
                 recorder: TurnRecorder, *, clock: Callable[[], float] = time.perf_counter,
                 trace: Callable[[], str | None] = runtime.serve_request_id) -> None:
        self.settings = settings
        self.edge = edge
        self.answers = Answers(router, settings.server.request_timeout_s)
        self.learners = learners
        self.knowledge = knowledge
        self.recorder = recorder
        self.clock = clock
        self.trace = trace

    async def analyse(self, message: str, exercise_id: str | None, history: list[str] | None = None,
                      language: str | None = None) -> tuple[EdgeResult, float]:
        """The edge's reading of a message (intent, skill, check, screening; ``history`` screened too); a hostile
        or oversized submission is :class:`InvalidInput`, a check that found no free worker :class:`Unavailable`."""
        t0 = self.clock()
        try:
            result = await asyncio.wait_for(self.edge.analyse.remote(message, exercise_id, history, language),
                                            self.settings.edge.call_timeout_s)
        except BackPressureError as exc:
            raise overloaded(exc) from None
        except TimeoutError:
            raise Unavailable(f"the edge tier did not answer within {self.settings.edge.call_timeout_s} s",
                              kind="edge_timeout", retry_after_s=1) from None
        if isinstance(result, EdgeRejection):
            if result.busy:
                raise Unavailable(result.message, kind="edge_busy", retry_after_s=1)
            raise InvalidInput(result.message, field=result.field)
        return result, ms(self.clock() - t0)

    def edge_result(self, turn_id: str, edge: EdgeResult, reply: EdgeReply, latency: dict[str, float | None],
                    t0: float, hints_given: dict[str, int] | None = None) -> TurnResult:
        """``hints_given``: the learner's hint count per exercise after this turn (from memory), so a reply that
        ends with a hint gives the next one in order."""
        exercise = self.settings.exercises.get(reply.hint_from) if reply.hint_from else None
        given = (hints_given or {}).get(reply.hint_from or "", 1)
        return TurnResult(
            turn_id=turn_id, reply=with_hint(reply, exercise, given), tier="edge", model=None, reason=reply.reason,
            intent=edge.signals.intent, skill=edge.signals.skill, check=edge.signals.check,
            usage=Usage(), cost=Cost(amount=0.0, currency=self.settings.catalogue.currency),
            latency_ms={**latency, "router": None, "core": None, "total": ms(self.clock() - t0)},
        )


class TurnService:
    """``POST /v1/tutor/turns`` without HTTP: :meth:`turn` takes a typed request and the caller's principal."""

    def __init__(self, tiers: Tiers) -> None:
        self._t = tiers

    async def turn(self, body: TurnRequest, principal: Principal) -> TurnResult | TurnStream:
        """The turn's result; for a model turn asked as a stream, the stream (its first batch received, so a
        refusal raises here). Memory is written durably before any reply."""
        t = self._t
        t0 = t.clock()
        turn_id = body.idempotency_key() or uuid.uuid4().hex
        ref = await t.learners.resolve(principal, body.learner_id)  # may this caller touch this learner? (else 404)
        ref.require("tutoring")  # no consent: nothing analysed, stored, sent to a model or recorded
        message = await t.learners.without_known_pii(ref, body.message)  # the learner's own names never leave here
        edge, edge_ms = await t.analyse(message, body.exercise_id, language=body.language)
        t_mem = t.clock()
        # the memory write and its audit record go together (both durable before any reply), not one after the other
        (before, after, receipt, change), _, _ = await asyncio.gather(
            t.learners.remember(ref.key, body, turn_id, edge),
            t.learners.audited(principal, ref, action="read+write", resource="learner memory",
                               route="POST /v1/tutor/turns"),
            t.learners.mark_active(ref))
        latency: dict[str, float | None] = {"edge": edge_ms, "memory": ms(t.clock() - t_mem)}
        trace = t.trace()
        extra: dict[str, Any] = {"memory": receipt, "mastery": change, "request_id": trace}
        if edge.reply is not None:
            result = t.edge_result(turn_id, edge, edge.reply, latency, t0, after.hints).model_copy(update=extra)
            t.recorder.turn(result, after, body=body, learner=ref)
            return result
        passages, latency["retrieval"] = await self._retrieve(edge, after)
        extra["citations"] = [Citation(chunk_id=p.chunk_id, title=p.title, section=p.section, source=p.source,
                                       score=p.score) for p in passages]
        request = self._core_request(body, edge, before, after, passages, ref, request_id=trace or turn_id)

        def finish(route: RouteEvent, done: DoneEvent, text: str) -> TurnResult:
            result = self._model_result(turn_id, edge, route, done, text, latency, t0).model_copy(update=extra)
            t.recorder.turn(result, after, done, body=body, learner=ref)
            return result

        if not body.stream:
            answer = await t.answers.whole(request)
            return finish(answer.route, answer.done, answer.text)
        return TurnStream(turn_id=turn_id, events=self._events(await t.answers.stream(request), finish))

    @staticmethod
    async def _events(stream: AsyncIterator[list[RouteEvent | DeltaEvent | DoneEvent]],
                      finish: Callable[[RouteEvent, DoneEvent, str], TurnResult],
                      ) -> AsyncIterator[list[RouteEvent | DeltaEvent | TurnDone]]:
        text: list[str] = []
        route: RouteEvent | None = None
        async for batch in stream:
            out: list[RouteEvent | DeltaEvent | TurnDone] = []
            for event in batch:
                if isinstance(event, DoneEvent):
                    if route is None:
                        raise RuntimeError("the router finished an answer it never routed")
                    out.append(TurnDone(result=finish(route, event, "".join(text))))
                    continue
                if isinstance(event, RouteEvent):
                    route = event
                else:
                    text.append(event.text)
                out.append(event)
            yield out

    async def _retrieve(self, edge: EdgeResult, ctx: LearnerContext | None) -> tuple[list[Passage], float | None]:
        """Curriculum passages for a model turn, filtered by skill and the learner's grade and language.
        Retrieval is an enrichment: when it fails the turn goes on without it (logged)."""
        t = self._t
        if t.knowledge is None or t.settings.knowledge.retrieval.top_k == 0:
            return [], None
        prefs = ctx.preferences if ctx else Preferences()
        filters = Filters(skill=edge.signals.skill, grade=prefs.grade,
                          lang=prefs.language.split("-")[0] if prefs.language else None)
        t0 = t.clock()
        try:
            result = await asyncio.wait_for(t.knowledge.search.remote(edge.signals.text, None, filters),
                                            RETRIEVAL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - RAG down must not fail the turn
            log.warning("retrieval skipped: %s: %s", type(exc).__name__, exc)
            return [], None
        return result.passages, ms(t.clock() - t0)

    def _core_request(self, body: TurnRequest, edge: EdgeResult, before: LearnerContext | None,
                      after: LearnerContext, passages: list[Passage], ref: LearnerRef, *,
                      request_id: str) -> CoreRequest:
        """What the router is asked: the tutor prompt (grounded, personalised) and what routing may look at.
        ``request_id`` is unique per HTTP request: a retried turn id must not clash inside vLLM."""
        t = self._t
        exercise = t.settings.exercises.get(body.exercise_id) if body.exercise_id else None
        check = edge.signals.check
        messages = prompts.tutor_messages(
            edge.signals.text, mode=body.mode,
            exercise_prompt=exercise.prompt if exercise else None,
            check_detail=check.detail if check else None,
            curriculum=[f"{p.title}{' — ' + p.section if p.section else ''}: {p.text}" for p in passages],
            profile=t.learners.profile(before), history=t.learners.history(before),
        )
        spec = VerifySpec(kind=exercise.kind, answer=exercise.answer, mode=body.mode, solve=exercise.solve,
                          requires_function=exercise.requires_function) if exercise else None
        return CoreRequest(request_id=request_id, messages=messages, signals=edge.signals,
                           learner=t.learners.features(after, edge.signals.skill), verify=spec,
                           tenant=ref.tenant, class_id=body.class_id, learner_ref=ref.pseudonym,
                           training="model_improvement" in ref.scopes)

    def _model_result(self, turn_id: str, edge: EdgeResult, route: RouteEvent, done: DoneEvent, text: str,
                      latency: dict[str, float | None], t0: float) -> TurnResult:
        timings = done.timings_ms
        return TurnResult(
            turn_id=turn_id, reply=text, tier=route.tier, model=route.model, reason=route.reason,
            intent=edge.signals.intent, skill=edge.signals.skill, check=edge.signals.check,
            usage=done.usage, cost=Cost(amount=done.cost, currency=done.currency),
            latency_ms={**latency, "router": timings.router, "core": timings.core, "core_ttft": timings.core_ttft,
                        "total": ms(self._t.clock() - t0)},
        )
