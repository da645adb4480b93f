"""What the router is asked (:class:`CoreRequest`: ready-made messages, the edge's signals, what budgets and the
policy may look at) and the engine request it becomes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.config.catalogue import ModelEntry
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing.decisions import LearnerFeatures
from tutor_cluster.routing.verify import VerifySpec


class CoreRequest(BaseModel):
    """What the gateway asks the router for: a model answer to ready-made messages."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    messages: list[dict[str, str]]
    signals: EdgeSignals
    learner: LearnerFeatures | None = Field(default=None, description="Learner state the policy may use.")
    model: str | None = Field(default=None, description="Catalogue model pinned by the client; None lets the policy pick.")
    tenant: str = Field(default="default", description="Tenant of the API key (budgets).")
    class_id: str | None = Field(default=None, description="Class the learner is in (budgets).")
    learner_ref: str | None = Field(default=None, description="Pseudonymous learner id (budgets, ledger).")
    training: bool = Field(default=False, description=(
        "The learner allows model improvement: the ledger keeps this interaction's routing features and cascade "
        "outcome (what the 'learned' policy trains on). False (the default, e.g. chat, whose end user's consent "
        "is unknown) keeps only the spend."))
    verify: VerifySpec | None = Field(default=None, description="Reference a cascade verifies a cheap answer against.")
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = Field(default=None, description="OpenAI response_format (JSON mode).")
    logprobs: bool | None = None
    top_logprobs: int | None = None


#: Sampling parameters of a CoreRequest passed to the engine as the client gave them (OpenAI names).
SAMPLING_PARAMS = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
                   "response_format", "logprobs", "top_logprobs")


def chat_request(request: CoreRequest, entry: ModelEntry) -> Any:
    """The engine's OpenAI request (Ray Serve LLM's protocol model) for ``request`` on ``entry``."""
    from ray.serve.llm.openai_api_models import ChatCompletionRequest

    params: dict[str, Any] = {
        "model": entry.engine,
        "messages": request.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens(request, entry),
        "request_id": request.request_id,
    }
    for key in SAMPLING_PARAMS:
        value = getattr(request, key)
        if value is not None:
            params[key] = value
    return ChatCompletionRequest(**params)


def max_tokens(request: CoreRequest, entry: ModelEntry) -> int:
    """The client's cap, else the model's default; never past the context."""
    return min(request.max_tokens or entry.max_output_tokens, entry.context_length)
