"""The Router deployment: picks a model with the configured policy, calls its engine, accounts the cost.

It streams events (plain dicts, batched in lists) back to the gateway:
``route`` (decision) → ``delta`` (text) … → ``done`` (usage, cost, timings) or ``error``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.errors import StatusError
from tutor_cluster.routing.catalogue import Catalogue, ModelEntry
from tutor_cluster.routing.policies import (
    Decision,
    LearnerFeatures,
    RoutingConfig,
    build_policy,
)


class CoreRequest(BaseModel):
    """What the gateway asks the router for: a model answer to ready-made messages."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    messages: list[dict[str, str]]
    signals: EdgeSignals
    learner: LearnerFeatures | None = Field(default=None, description="Learner state the policy may use.")
    model: str | None = Field(default=None, description="Catalogue model pinned by the client; None lets the policy pick.")
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None


def _parse_sse(item: Any) -> list[dict[str, Any]]:
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


class EngineError(StatusError):
    """The engine refused or failed the request."""


class RouterCore:
    """Routing and accounting, independent of Serve (engines are injected handles)."""

    def __init__(self, config: RoutingConfig, catalogue: Catalogue, engines: dict[str, Any]) -> None:
        self._catalogue = catalogue
        self._policy = build_policy(config, catalogue)
        self._engines = engines  # keyed by engine name, which is also its LLMConfig model_id

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

    def _chat_request(self, request: CoreRequest, decision: Decision) -> Any:
        from ray.serve.llm.openai_api_models import ChatCompletionRequest

        entry = self._entry(decision.model)
        params: dict[str, Any] = {
            "model": entry.engine,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": min(request.max_tokens or entry.max_output_tokens, entry.context_length),
            "request_id": request.request_id,
        }
        for key in ("temperature", "top_p", "stop", "seed"):
            value = getattr(request, key)
            if value is not None:
                params[key] = value
        return ChatCompletionRequest(**params)

    async def run(self, request: CoreRequest) -> AsyncIterator[list[dict[str, Any]]]:
        t0 = time.perf_counter()
        try:
            decision = self.decide(request)
            entry = self._entry(decision.model)
        except EngineError as exc:
            yield [{"type": "error", "status": exc.status, "message": exc.message}]
            return
        yield [{"type": "route", **decision.model_dump()}]
        handle = self._engines[entry.engine]
        t_call = time.perf_counter()
        ttft: float | None = None
        usage: dict[str, int] = {}
        finish: str | None = None
        try:
            stream = handle.options(stream=True).chat.remote(self._chat_request(request, decision))
            async for item in stream:
                items = item if isinstance(item, list) else [item]
                batch: list[dict[str, Any]] = []
                for raw in items:
                    for chunk in _parse_sse(raw):
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        for choice in chunk.get("choices") or ():
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                if ttft is None:
                                    ttft = time.perf_counter() - t_call
                                batch.append({"type": "delta", "text": text})
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
                if batch:
                    yield batch
        except EngineError as exc:
            yield [{"type": "error", "status": exc.status, "message": exc.message}]
            return
        except Exception as exc:  # noqa: BLE001 - a dead or failing engine replica: report, never hang or 500
            yield [{"type": "error", "status": 503, "message": f"engine {entry.engine!r} failed: {type(exc).__name__}"}]
            return
        t_end = time.perf_counter()
        prompt = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        yield [{
            "type": "done",
            "tier": decision.tier,
            "model": decision.model,
            "finish_reason": finish or "stop",
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            "cost": entry.cost(prompt, completion),
            "currency": self._catalogue.currency,
            "timings_ms": {
                "router": round((t_call - t0) * 1000, 3),
                "core": round((t_end - t_call) * 1000, 3),
                "core_ttft": None if ttft is None else round(ttft * 1000, 3),
            },
        }]

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


@serve.deployment(name="router")
class Router(RouterCore):
    """Serve deployment wrapper of :class:`RouterCore`."""
