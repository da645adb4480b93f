"""The Router deployment: picks a model with the configured policy, calls its engine, accounts the cost.

It streams typed events (``routing/events.py``), batched in lists, back to the turn service:
``route`` (decision) → ``delta`` (text) … → ``done`` (usage, cost, timings) or ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ray import serve

from tutor_cluster import runtime
from tutor_cluster.config.catalogue import Catalogue, ModelEntry
from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.routing.budgets import (
    BudgetExceeded,
    BudgetLedger,
    Reservation,
    Subject,
)
from tutor_cluster.routing.decisions import Decision
from tutor_cluster.routing.engines import EngineError, stream_deltas
from tutor_cluster.routing.events import (
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    RouteEvent,
    RouterEvent,
    Timings,
    TokenUsage,
)
from tutor_cluster.routing.policies import build_policy
from tutor_cluster.routing.requests import CoreRequest, chat_request, max_tokens
from tutor_cluster.routing.verify import verify

__all__ = ["CoreRequest", "EngineError", "Router", "RouterCore"]

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only

log = logging.getLogger(f"ray.serve.{__name__}")  # under Serve's logger: JSON lines with the request id


class RouterCore:
    """Routing and accounting, independent of Serve (engines are injected handles)."""

    def __init__(self, config: RoutingConfig, catalogue: Catalogue, engines: dict[str, Any], *,
                 ledger: BudgetLedger | None = None, clock: Any = time.monotonic) -> None:
        self._config = config
        self._catalogue = catalogue
        self._policy = build_policy(config, catalogue)
        self._engines = engines  # keyed by engine name, which is also its LLMConfig model_id
        self._ledger = ledger if ledger is not None else BudgetLedger(config.budgets)
        self._clock = clock
        self._cooling: dict[str, float] = {}  # engine → monotonic time until which it is skipped

    def decide(self, request: CoreRequest) -> Decision:
        if request.model is not None:
            entry = self._entry(request.model)
            return Decision(tier=entry.tier, model=entry.name, reason="pinned: the client named this model")
        return self._policy.decide(request.signals, request.learner)

    def _entry(self, name: str) -> ModelEntry:
        entry = self._catalogue.get(name)
        if entry is None:  # policies only name catalogue models; this guards direct callers
            raise EngineError(404, f"unknown model {name!r}")
        return entry

    # ---------------------------------------------------------------- budgets
    def _chain(self, entry: ModelEntry) -> list[ModelEntry]:
        return [entry, *(self._entry(n) for n in self._config.fallbacks.get(entry.name, ()))]

    def _worst_case(self, request: CoreRequest, chain: list[ModelEntry]) -> float:
        """Cost if the prompt were ~3 characters a token and the answer used all of max_tokens."""
        prompt = sum(len(m.get("content") or "") for m in request.messages) // 3 + 8 * len(request.messages)
        return max(e.cost(prompt, max_tokens(request, e)) for e in chain)

    def _reserve(self, request: CoreRequest, decision: Decision) -> tuple[Decision, Reservation]:
        subject = Subject(tenant=request.tenant, class_id=request.class_id, learner=request.learner_ref)
        amount = self._worst_case(request, self._chain(self._entry(decision.model)))
        if decision.escalate_to:  # a cascade may pay for both legs
            amount += self._worst_case(request, self._chain(self._entry(decision.escalate_to)))
        try:
            return decision, self._ledger.reserve(subject, amount)
        except BudgetExceeded as exc:
            cheapest = min(self._catalogue.models, key=lambda m: (m.price_per_1k_output, m.price_per_1k_input))
            if exc.rule.on_exhaustion != "downgrade" or cheapest.name == decision.model or request.model is not None:
                raise
            down = Decision(tier=cheapest.tier, model=cheapest.name, features=decision.features,
                            reason=f"budget {exc.rule.name} is spent: downgraded from {decision.model} "
                                   f"to {cheapest.name} ({decision.reason})")
            return down, self._ledger.reserve(subject, self._worst_case(request, self._chain(cheapest)))

    # ---------------------------------------------------------------- engines
    def _available(self, entry: ModelEntry) -> bool:
        return self._cooling.get(entry.engine, 0.0) <= self._clock()

    def _call(self, entry: ModelEntry, request: CoreRequest, state: dict[str, Any]) -> AsyncIterator[list[DeltaEvent]]:
        return stream_deltas(self._engines[entry.engine], chat_request(request, entry),
                             self._config.first_token_timeout_s, state)

    def _retry_after(self) -> int:
        now = self._clock()
        waits = [until - now for until in self._cooling.values() if until > now]
        return max(1, int(min(waits) + 0.999)) if waits else 1

    async def run(self, request: CoreRequest) -> AsyncIterator[list[RouterEvent]]:
        """The answer as batches of events. The budget reservation is settled on every way out: the answer's
        cost when done, nothing when it failed, and — when the caller goes away mid-answer (a disconnected
        client cancels the stream) — an estimate from the characters streamed, recorded in the ledger too, so
        budgets always equal the ledger. Budget and ledger calls run off the event loop."""
        t0 = time.perf_counter()
        try:
            decision = self.decide(request)
            decision, reservation = await asyncio.to_thread(self._reserve, request, decision)
        except EngineError as exc:
            yield [ErrorEvent(kind="rejected", message=exc.message)]
            return
        except BudgetExceeded as exc:
            yield [ErrorEvent(kind="budget_exhausted", message=exc.message, retry_after_s=exc.retry_after_s)]
            return
        progress = _Progress(reservation)
        try:
            async for batch in self._answer(request, decision, progress, t0):
                for event in batch:
                    if isinstance(event, DeltaEvent):
                        progress.chars += len(event.text)
                    elif isinstance(event, RouteEvent):
                        progress.route = event
                yield batch
        finally:
            if not progress.settled:  # sync: an awaited call here could be cancelled again
                self._abandoned(request, progress)

    async def _settle(self, progress: "_Progress", cost: float) -> None:
        progress.settled = True
        await asyncio.to_thread(self._ledger.settle, progress.reservation, cost)

    def _abandoned(self, request: CoreRequest, progress: "_Progress") -> None:
        """The caller left mid-answer: charge what was streamed, estimated from characters (~3 per token, as the
        reservation's worst case), and record it."""
        progress.settled = True
        route = progress.route
        entry = self._catalogue.get(route.model) if route is not None else None
        if entry is None:
            self._ledger.settle(progress.reservation, 0.0)
            return
        prompt = sum(len(m.get("content") or "") for m in request.messages) // 3
        cost = entry.cost(prompt, progress.chars // 3)
        self._ledger.settle(progress.reservation, cost)
        decision = Decision(tier=route.tier, model=route.model, features=route.features,
                            reason=f"{route.reason}; the client left mid-answer: cost estimated from characters")
        self._record(request, decision, entry, prompt, progress.chars // 3, cost, None)

    async def _answer(self, request: CoreRequest, decision: Decision, progress: "_Progress",
                      t0: float) -> AsyncIterator[list[RouterEvent]]:
        failures: list[str] = []
        state: dict[str, Any] = {"usage": {}, "finish": None, "ttft": None}
        answered: ModelEntry | None = None
        spent = 0.0  # cost of a cascade's first leg, when it was escalated
        small_ok: bool | None = None  # a cascade's outcome: the label `routing train` learns from
        if decision.escalate_to and request.model is None:
            first = self._entry(decision.model)
            state["t_call"] = time.perf_counter()
            try:
                text = "".join([e.text async for b in self._call(first, request, state) for e in b])
            except Exception as exc:  # noqa: BLE001 - the cheap leg failed: escalate like a failed verification
                self._cooling[first.engine] = self._clock() + self._config.cooldown_s
                text, why = None, f"{first.name} failed: {type(exc).__name__}"
            if text is not None:
                verdict = verify(text, request.verify)
                if verdict.ok:
                    route = decision.model_copy(update={"reason": f"{decision.reason}; verified: {verdict.reason}"})
                    yield [_route(route), DeltaEvent(text=text)]
                    yield [await self._done(request, route, first, state, progress, t0, small_ok=True)]
                    return
                why = f"{first.name}'s answer failed verification: {verdict.reason}"
                small_ok = False
                usage = state["usage"]
                spent = first.cost(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
            target = self._entry(decision.escalate_to)
            decision = Decision(tier=target.tier, model=target.name, features=decision.features,
                                reason=f"cascade: {why}; escalated to {target.name}")
        for entry in self._chain(self._entry(decision.model)):
            if not self._available(entry):
                failures.append(f"{entry.name} cooling down")
                continue
            route = decision if entry.name == decision.model else Decision(
                tier=entry.tier, model=entry.name, features=decision.features,
                reason=f"{decision.reason}; fallback to {entry.name} ({'; '.join(failures)})")
            state.update(t_call=time.perf_counter(), usage={}, finish=None, ttft=None)
            started = False
            try:
                async for batch in self._call(entry, request, state):
                    if not started:
                        started = True
                        yield [_route(route), *batch]
                    else:
                        yield batch
            except Exception as exc:  # noqa: BLE001 - a failing engine: fall back, report, never hang or 500
                rejected = isinstance(exc, EngineError) and exc.rejected
                if started or rejected:  # mid-answer, or the request itself is bad
                    await self._settle(progress, 0.0)
                    yield [ErrorEvent(kind="rejected" if rejected and not started else "unavailable",
                                      message=f"engine {entry.engine!r} failed: {type(exc).__name__}: {exc}")]
                    return
                self._cooling[entry.engine] = self._clock() + self._config.cooldown_s
                failures.append(f"{entry.name} failed: {type(exc).__name__}")
                continue
            if not started:
                yield [_route(route)]
            answered = entry
            break
        if answered is None:
            await self._settle(progress, 0.0)
            yield [ErrorEvent(kind="unavailable", retry_after_s=self._retry_after(),
                              message="no model could answer: " + "; ".join(failures))]
            return
        yield [await self._done(request, decision, answered, state, progress, t0, spent, small_ok)]

    def _record(self, request: CoreRequest, decision: Decision, answered: ModelEntry, prompt: int, completion: int,
                cost: float, small_ok: bool | None) -> None:
        entry = {
            "at": time.time(), "request_id": request.request_id, "tenant": request.tenant,
            "class_id": request.class_id, "learner": request.learner_ref, "model": answered.name,
            "tier": answered.tier, "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost,
            "currency": self._catalogue.currency, "policy": self._config.policy, "reason": decision.reason,
            "small_ok": small_ok if request.training else None,
            "features": decision.features.model_dump() if decision.features and request.training else {},
        }
        try:
            self._ledger.record(entry)
        except Exception as exc:  # noqa: BLE001 - the answer is already out; a lost ledger line is logged
            log.warning("spend ledger write failed: %s: %s", type(exc).__name__, exc)

    async def _done(self, request: CoreRequest, decision: Decision, answered: ModelEntry, state: dict[str, Any],
                    progress: "_Progress", t0: float, spent: float = 0.0, small_ok: bool | None = None) -> DoneEvent:
        """The final event: usage of the answer, cost of the whole interaction (a cascade's first leg included),
        settled against the budgets."""
        t_end = time.perf_counter()
        usage = state["usage"]
        prompt = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        cost = round(answered.cost(prompt, completion) + spent, 10)
        await self._settle(progress, cost)
        await asyncio.to_thread(self._record, request, decision, answered, prompt, completion, cost, small_ok)
        reservation = progress.reservation
        return DoneEvent(
            tier=answered.tier, model=answered.name, finish_reason=state["finish"] or "stop",
            usage=TokenUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
            cost=cost, currency=self._catalogue.currency, budget_alerts=list(reservation.soft),
            timings_ms=Timings(router=round((state["t_call"] - t0) * 1000, 3),
                               core=round((t_end - state["t_call"]) * 1000, 3),
                               core_ttft=None if state["ttft"] is None else round(state["ttft"] * 1000, 3)),
        )

    async def ready(self) -> dict[str, bool]:
        out = {}
        for name, handle in self._engines.items():
            try:
                await handle.check_health.remote()
                out[name] = True
            except Exception:  # noqa: BLE001 - any failure means not ready
                out[name] = False
        return out

    async def engine_stats(self) -> dict[str, dict[str, int]]:
        return {name: await handle.stats.remote() for name, handle in self._engines.items()}


@dataclass
class _Progress:
    """How far one answer got: whether its reservation is settled, what was routed and streamed."""

    reservation: Reservation
    settled: bool = False
    route: RouteEvent | None = None
    chars: int = 0


def _route(decision: Decision) -> RouteEvent:
    return RouteEvent(tier=decision.tier, model=decision.model, reason=decision.reason, features=decision.features)


@serve.deployment(name="router")
class Router(RouterCore):
    """Serve deployment wrapper of :class:`RouterCore`."""

    def __init__(self, config: RoutingConfig, catalogue: Catalogue, engines: dict[str, Any], **kwargs: Any) -> None:
        runtime.bind_replica_grpc_on_loopback()
        # another region's engines (regions.<name>.models_from) are named, not bound: resolved here
        super().__init__(config, catalogue, {k: runtime.resolve_handle(v) for k, v in engines.items()}, **kwargs)
