"""Calling one engine (a Ray Serve LLM deployment): its OpenAI chat stream read as text deltas, with a deadline
on the first item and the engine's failures as :class:`EngineError`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from tutor_cluster.routing.events import DeltaEvent


def parse_sse(item: Any) -> list[dict[str, Any]]:
    """Turn one item of LLMServer's stream into chunk dicts (raises on an engine error item)."""
    if isinstance(item, str):
        out = []
        for line in item.split("\n"):
            if line.startswith("data: "):
                body = line[6:].strip()
                if body and body != "[DONE]":
                    out.append(json.loads(body))
        return out
    error = getattr(item, "error", None)
    if error is not None:  # ErrorResponse (compare by shape: its class is not importable portably)
        raise EngineError(int(getattr(error, "code", 500) or 500), str(getattr(error, "message", error)))
    if hasattr(item, "model_dump"):
        return [item.model_dump()]
    raise EngineError(500, f"unexpected engine stream item {type(item).__name__}")


class EngineError(Exception):
    """The engine refused or failed the request; ``code`` is the engine's own error code (4xx: the request
    itself is bad, so no other engine would take it either)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def rejected(self) -> bool:
        return 400 <= self.code < 500 and self.code != 429


async def stream_deltas(engine: Any, chat: Any, first_item_timeout_s: float,
                    state: dict[str, Any]) -> AsyncIterator[list[DeltaEvent]]:
    """One engine call as delta batches; raises when the engine fails or misses the first-item deadline."""
    stream = engine.options(stream=True).chat.remote(chat)
    items = stream.__aiter__()
    first = True
    while True:
        try:
            if first:
                item = await asyncio.wait_for(items.__anext__(), first_item_timeout_s)
                first = False
            else:
                item = await items.__anext__()
        except StopAsyncIteration:
            if state.get("finish") is None:  # a finished answer always says why it stopped
                raise EngineError(503, "the engine's stream ended without a finish reason") from None
            return
        except TimeoutError:
            cancel = getattr(stream, "cancel", None)
            if cancel is not None:
                cancel()
            raise TimeoutError(f"no first item within {first_item_timeout_s} s") from None
        batch: list[DeltaEvent] = []
        for raw in item if isinstance(item, list) else [item]:
            for chunk in parse_sse(raw):
                if chunk.get("usage"):
                    state["usage"] = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    logprobs = (choice.get("logprobs") or {}).get("content")  # only when the client asked
                    if text or logprobs:
                        if text and state.get("ttft") is None:
                            state["ttft"] = time.perf_counter() - state["t_call"]
                        batch.append(DeltaEvent(text=text or "", logprobs=logprobs or None))
                    if choice.get("finish_reason"):
                        state["finish"] = choice["finish_reason"]
        if batch:
            yield batch
