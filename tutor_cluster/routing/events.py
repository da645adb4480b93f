"""What the router streams back for one request, as typed events (a discriminated union on ``type``):
``route`` (the decision) → ``delta`` (text) … → ``done`` (usage, cost, timings) or ``error``.

The router yields them in batches (lists), so that one network hop carries many small deltas."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tutor_cluster.routing.decisions import DecisionFeatures

Tier = Literal["small", "core"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RouteEvent(_Event):
    """The model chosen to answer, and why."""

    type: Literal["route"] = "route"
    tier: Tier
    model: str
    reason: str
    features: DecisionFeatures | None = Field(default=None, description="What the decision looked at.")


class DeltaEvent(_Event):
    """A piece of the answer's text (and its tokens' logprobs when the request asked for them)."""

    type: Literal["delta"] = "delta"
    text: str
    logprobs: list[dict[str, Any]] | None = None


class TokenUsage(_Event):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Timings(_Event):
    """Milliseconds: routing before the engine call, the engine call, and its time to first token."""

    router: float
    core: float
    core_ttft: float | None = None


class DoneEvent(_Event):
    """The answer is complete: who answered, usage, the whole interaction's cost (settled against budgets)."""

    type: Literal["done"] = "done"
    tier: Tier
    model: str
    finish_reason: str = "stop"
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost: float = 0.0
    currency: str
    budget_alerts: list[str] = Field(default_factory=list, description="Soft budget limits this interaction crossed.")
    timings_ms: Timings


class ErrorEvent(_Event):
    """The request failed; ``kind`` says how, so the caller can map it (e.g. to an HTTP status)."""

    type: Literal["error"] = "error"
    kind: Literal["budget_exhausted", "rejected", "unavailable"]
    message: str
    retry_after_s: int | None = None


RouterEvent = Annotated[RouteEvent | DeltaEvent | DoneEvent | ErrorEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[RouterEvent] = TypeAdapter(RouterEvent)
