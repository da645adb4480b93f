"""``POST /v1/tutor/turns``: the HTTP face of :class:`~tutor_cluster.turns.service.TurnService`. A streamed turn
is server-sent events: ``route``, then ``delta`` (text) events, then ``done`` (the whole result) or ``error``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Request

from tutor_cluster.api import sse
from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import ERRORS, ID_PATTERN, TurnRequest, TurnResponse
from tutor_cluster.routing.events import DeltaEvent, RouteEvent
from tutor_cluster.turns.service import TurnService
from tutor_cluster.turns.types import TurnDone, TurnResult

PATH = "/v1/tutor/turns"


def _render(event: RouteEvent | DeltaEvent | TurnDone) -> str:
    if isinstance(event, DeltaEvent):
        return sse.sse("delta", {"text": event.text})
    if isinstance(event, RouteEvent):
        return sse.sse("route", {"tier": event.tier, "model": event.model, "reason": event.reason})
    return sse.sse("done", event.result.model_dump())


async def _settled(result: TurnResult) -> AsyncIterator[str]:
    """A turn answered without a model, as the same three events a model turn streams."""
    yield sse.sse("route", {"tier": result.tier, "model": None, "reason": result.reason})
    yield sse.sse("delta", {"text": result.reply})
    yield sse.sse("done", result.model_dump())


def routes(turns: TurnService, timeout_s: float) -> APIRouter:
    router = APIRouter(tags=["tutor"])

    @router.post(PATH, response_model=TurnResponse, responses=ERRORS, dependencies=[allow("POST /v1/tutor/turns")])
    async def tutor_turn(body: TurnRequest, http: Request,
                         idempotency_key: str | None = Header(default=None, pattern=ID_PATTERN)) -> Any:
        """One tutoring turn. With ``stream: true`` the answer comes as server-sent events:
        ``route``, then ``delta`` (text) events, then ``done`` (the full TurnResponse) or ``error``."""
        if idempotency_key and not body.turn_id:  # the standard header works as turn_id
            body = body.model_copy(update={"turn_id": idempotency_key})
        result = await turns.turn(body, http.state.principal)
        if isinstance(result, TurnResult):
            return sse.response(_settled(result)) if body.stream else result
        return sse.response(sse.render(result.events, _render, path=PATH, error_event="error", timeout_s=timeout_s))

    return router
