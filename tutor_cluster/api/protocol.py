"""HTTP protocol of API v1: request, response and error models (pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutor_cluster.edge.signals import Check

_ID = r"^[A-Za-z0-9._:@-]{1,128}$"
MAX_MESSAGE_CHARS = 8000


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty or only whitespace")
    return v


# ---------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    type: str = Field(description="Machine-readable kind, e.g. invalid_request, unauthorized, payload_too_large.")
    message: str = Field(description="What went wrong and how to fix it.")
    field: str | None = Field(default=None, description="The request field at fault, as a dotted path.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# ---------------------------------------------------------------- tutoring turns
class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learner_id: str = Field(pattern=_ID, description="The learner (pseudonymised at the gateway before any tier).")
    session_id: str = Field(pattern=_ID, description="The tutoring session.")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="What the learner wrote.")
    exercise_id: str | None = Field(default=None, pattern=_ID, description="Exercise being answered, if any.")
    mode: Literal["practice", "explain"] = Field(default="practice", description="practice: guide, don't reveal.")
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    turn_id: str | None = Field(default=None, pattern=_ID,
                                description="Idempotency key: a retried turn with the same id updates memory once.")
    class_id: str | None = Field(default=None, pattern=_ID, description="The learner's class (class budgets).")

    check_message_blank = field_validator("message")(_not_blank)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Cost(BaseModel):
    amount: float = Field(description="Cost of this interaction.")
    currency: str


class MasteryChange(BaseModel):
    skill: str
    before: float = Field(description="P(known) before this answer (BKT).")
    after: float = Field(description="P(known) after it.")
    mastered: bool
    threshold: float


class MemoryReceipt(BaseModel):
    version: int = Field(description="The learner context's version after this turn.")
    applied: bool = Field(description="False when this turn_id had been applied before (a retry).")


class Citation(BaseModel):
    chunk_id: str = Field(description="Curriculum chunk id ('<document id>#<n>').")
    title: str
    section: str
    source: str = Field(description="Curriculum file and line.")
    score: float


class TurnResponse(BaseModel):
    turn_id: str
    request_id: str | None = Field(default=None, description="Trace id of this HTTP request (X-Request-ID); "
                                                             "every tier's log lines carry it.")
    reply: str
    tier: Literal["edge", "small", "core"] = Field(description="Which tier answered.")
    model: str | None = Field(description="Catalogue model that answered; null at the edge.")
    reason: str = Field(description="Why this tier answered (the routing reason).")
    intent: str
    skill: str | None
    check: Check | None = Field(default=None, description="Deterministic answer check, when one ran.")
    mastery: MasteryChange | None = Field(default=None, description="Mastery change, for graded answers.")
    memory: MemoryReceipt | None = Field(default=None, description="Learner memory write (durable before this reply).")
    citations: list[Citation] = Field(default_factory=list, description="Curriculum chunks given to the model.")
    usage: Usage
    cost: Cost
    latency_ms: dict[str, float | None] = Field(
        description="Milliseconds per tier: edge, memory, retrieval, router, core (core_ttft), total.")


# ---------------------------------------------------------------- OpenAI-compatible
class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI chat completions, minus what a tutor has no use for (tools, n > 1, logprobs)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="'auto' lets the router choose; or a name from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: Literal[1] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = Field(default=None, max_length=256)
    # tutor-cluster extensions (openai SDK: extra_body={...})
    exercise_id: str | None = Field(default=None, pattern=_ID, description="Extension: exercise being answered.")
    mode: Literal["practice", "explain"] = Field(default="explain", description="Extension: pedagogy mode.")

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if v[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        if not v[-1].text().strip():
            raise ValueError("the last user message must not be empty")
        if sum(len(m.text()) for m in v) > MAX_MESSAGE_CHARS * 4:
            raise ValueError(f"messages are longer than {MAX_MESSAGE_CHARS * 4} characters in all")
        return v


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tutor-cluster"
    tier: str | None = None
    context_length: int | None = None
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class SkillView(BaseModel):
    mastery: float
    attempts: int
    correct: int
    mastered: bool


class LearnerView(BaseModel):
    learner_id: str
    version: int
    skills: dict[str, SkillView]
    misconceptions: dict[str, dict[str, Any]]
    preferences: dict[str, Any]
    recent: list[dict[str, Any]]
    created_at: float
    updated_at: float


def error_body(type_: str, message: str, field: str | None = None) -> dict[str, Any]:
    return ErrorResponse(error=ErrorDetail(type=type_, message=message, field=field)).model_dump(exclude_none=True)
