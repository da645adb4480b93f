"""Server-sent events: the framing, and rendering a stream of turn-service events with its failures (a domain
error or the deadline midway becomes an error event in the route family's shape). One HTTP write per batch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse

from tutor_cluster.api.errors import ApiError
from tutor_cluster.api.protocol import render_error
from tutor_cluster.errors import TutorError

E = TypeVar("E")


def sse(event: str | None, data: Any) -> str:
    """One SSE message; ``data`` as compact JSON unless it is a string already."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def response(chunks: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def render(batches: AsyncIterator[list[E]], render_one: Callable[[E], str | None], *, path: str,
                 error_event: str | None, timeout_s: float, tail: str | None = None) -> AsyncIterator[str]:
    """The stream as text. A failure midway is one last error message (``error_event`` names its SSE event; None
    for OpenAI's unnamed data lines), then ``tail``."""
    try:
        async for batch in batches:
            out = [text for event in batch if (text := render_one(event))]
            if out:
                yield "".join(out)
    except TimeoutError:
        yield sse(error_event, render_error(path, 504, "timeout", f"no answer within {timeout_s} s")[1])
    except TutorError as exc:
        yield sse(error_event, ApiError.of(exc).body(path))
    if tail is not None:
        yield tail
