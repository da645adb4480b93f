"""The reply step: ask the router for a model answer and take it whole or as a stream, within the deadline.
The router's error events become domain errors here, so callers see one kind of failure."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ray.exceptions import RayError
from ray.serve.exceptions import BackPressureError

from tutor_cluster.errors import BudgetExhausted, Rejected, TutorError, Unavailable
from tutor_cluster.routing.events import DeltaEvent, DoneEvent, ErrorEvent, RouteEvent, RouterEvent
from tutor_cluster.routing.requests import CoreRequest


def overloaded(exc: BackPressureError) -> Unavailable:
    """A tier shed the call (its queue is full): a 503 with the retry time Serve suggests."""
    return Unavailable(f"the service is overloaded ({exc.message}); retry shortly", kind="overloaded",
                       retry_after_s=max(1, math.ceil(exc.retry_after_s or 1)))


def failure(event: ErrorEvent) -> TutorError:
    """The domain error a router error event stands for."""
    if event.kind == "budget_exhausted":
        return BudgetExhausted(event.message, retry_after_s=event.retry_after_s)
    if event.kind == "rejected":
        return Rejected(f"the model rejected the request: {event.message}", field="messages",
                        code="rejected_by_model")
    return Unavailable(f"the model tier failed: {event.message}", kind="model_unavailable",
                       retry_after_s=event.retry_after_s or 1)


@dataclass
class Answer:
    """A whole model answer: its text, the route taken and the final accounting."""

    text: str
    route: RouteEvent
    done: DoneEvent
    logprobs: list[dict[str, Any]] | None = field(default=None)


class Answers:
    """The router, as the turn service calls it (``router`` is a Serve handle of the Router deployment, or anything
    with ``run.options(stream=True).remote(request)``)."""

    def __init__(self, router: Any, timeout_s: float) -> None:
        self._router = router
        self.timeout_s = timeout_s

    async def _batches(self, request: CoreRequest) -> AsyncIterator[list[RouterEvent]]:
        """The router's events, in the batches it sent. A router that fails mid-call is an ``unavailable`` error."""
        try:
            async for batch in self._router.run.options(stream=True).remote(request):
                yield batch
        except BackPressureError as exc:
            raise overloaded(exc) from None
        except RayError as exc:
            yield [ErrorEvent(kind="unavailable", message=f"router failed: {type(exc).__name__}")]

    async def whole(self, request: CoreRequest) -> Answer:
        """The complete answer (token logprobs collected when the request asked for them)."""
        text: list[str] = []
        logprobs: list[dict[str, Any]] = []
        route: RouteEvent | None = None
        done: DoneEvent | None = None
        async with asyncio.timeout(self.timeout_s):
            async for batch in self._batches(request):
                for event in batch:
                    if isinstance(event, DeltaEvent):
                        text.append(event.text)
                        logprobs.extend(event.logprobs or ())
                    elif isinstance(event, RouteEvent):
                        route = event
                    elif isinstance(event, DoneEvent):
                        done = event
                    else:
                        raise failure(event)
        if route is None or done is None:
            raise Unavailable("the model tier ended the answer without finishing it", kind="model_unavailable",
                              retry_after_s=1)
        return Answer("".join(text), route, done, logprobs if request.logprobs else None)

    async def stream(self, request: CoreRequest) -> AsyncIterator[list[RouteEvent | DeltaEvent | DoneEvent]]:
        """The answer as it comes, its first batch already received: a refusal before any output (budget, no model
        available) raises here, so the caller can answer with a real status instead of an error inside a stream.
        The returned iterator raises the domain error of a later error event, and ``TimeoutError`` past the
        deadline."""
        batches = self._batches(request).__aiter__()
        async with asyncio.timeout(self.timeout_s):
            first = await anext(batches, None)
        for event in first or ():
            if isinstance(event, ErrorEvent):
                raise failure(event)

        async def rest() -> AsyncIterator[list[RouteEvent | DeltaEvent | DoneEvent]]:
            if first:
                yield first
            async with asyncio.timeout(self.timeout_s):
                async for batch in batches:
                    for event in batch:
                        if isinstance(event, ErrorEvent):
                            raise failure(event)
                    yield batch

        return rest()
