"""What the turn service takes and returns: typed requests, results and learner views. The HTTP API serves these
shapes as they are (``api/protocol.py`` re-exports them), so a field is declared once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutor_cluster.edge.signals import Check
from tutor_cluster.routing.events import DeltaEvent, RouteEvent, TokenUsage

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
MAX_MESSAGE_CHARS = 8000
Usage = TokenUsage


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty or only whitespace")
    return v


class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learner_id: str = Field(pattern=ID_PATTERN, description="The learner (pseudonymised at the gateway before any tier).")
    session_id: str = Field(pattern=ID_PATTERN, description="The tutoring session.")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="What the learner wrote.")
    exercise_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Exercise being answered, if any.")
    mode: Literal["practice", "explain"] = Field(default="practice", description="practice: guide, don't reveal.")
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    turn_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                description="Idempotency key: a retried turn with the same id updates memory once.")
    seq: int | None = Field(default=None, ge=0, description=(
        "The message's number within the session (the client counts): without a turn_id, the turn's idempotency "
        "key is derived from learner, session and seq, so a retry of message seq applies once."))
    class_id: str | None = Field(default=None, pattern=ID_PATTERN, description="The learner's class (class budgets).")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$", description=(
        "The learner's language (e.g. 'es'): how the edge reads '1,000', '1.000' and number words; else the "
        "exercise's."))

    check_message_blank = field_validator("message")(_not_blank)

    def idempotency_key(self) -> str | None:
        """turn_id; else one derived from session and seq (the learner and tenant are in the memory key); else
        None (then every request is a new turn)."""
        if self.turn_id:
            return self.turn_id
        return f"seq:{self.session_id}:{self.seq}" if self.seq is not None else None



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


class TurnResult(BaseModel):
    """One answered turn: the reply, who answered and why, what the edge saw, what memory recorded, cost, timings."""

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


# ---------------------------------------------------------------- OpenAI-style chat, as the turn service sees it
class ChatInput(BaseModel):
    """A chat request after the API has read it: plain role/content messages (the last one the learner's)."""

    model_config = ConfigDict(frozen=True)

    messages: list[dict[str, str]] = Field(min_length=1, description="role/content; the last has role 'user'.")
    model: str = Field(description="'auto' lets the router choose; or a catalogue model.")
    exercise_id: str | None = None
    mode: Literal["practice", "explain"] = "explain"
    user: str | None = Field(default=None, description="The client's end-user id (pseudonymised for budgets).")
    max_tokens: int | None = None
    sampling: dict[str, Any] = Field(default_factory=dict, description="OpenAI sampling parameters to pass on.")


class ChatAnswer(BaseModel):
    """A whole chat answer (a model's, or the edge's)."""

    id: str
    created: int
    model: str
    text: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    logprobs: list[dict[str, Any]] | None = None
    tutor: dict[str, Any] = Field(description="tier, reason, cost and latency_ms of this answer.")


# ---------------------------------------------------------------- streams
class TurnDone(BaseModel):
    """The last event of a streamed turn: the whole result (as the non-streamed answer would be)."""

    type: Literal["turn_done"] = "turn_done"
    result: TurnResult


class ChatDone(BaseModel):
    """The last event of a streamed chat answer."""

    type: Literal["chat_done"] = "chat_done"
    model: str
    finish_reason: str
    usage: Usage
    tutor: dict[str, Any]


@dataclass
class TurnStream:
    """A model turn being answered: batches of route, delta and (last) :class:`TurnDone` events. Iterating raises
    a :class:`~tutor_cluster.errors.TutorError` when the answer fails midway, ``TimeoutError`` past the deadline."""

    turn_id: str
    events: AsyncIterator[list[RouteEvent | DeltaEvent | TurnDone]]


@dataclass
class ChatStream:
    """A chat answer being streamed: batches of route, delta and (last) :class:`ChatDone` events (raises as
    :class:`TurnStream` does)."""

    id: str
    created: int
    model: str
    events: AsyncIterator[list[RouteEvent | DeltaEvent | ChatDone]]


class AuditRecord(BaseModel):
    """One access to a learner's data, as the audit trail keeps it."""

    seq: int = Field(description="Position in the hash chain (1, 2, …).")
    at: str = Field(description="When (UTC, ISO 8601).")
    actor: str = Field(description="The API key that made the access (its id).")
    role: str
    tenant: str
    action: str = Field(description="read, write, read+write, register, export or erase.")
    resource: str = Field(description="What was accessed: learner memory, preferences, personal data, …")
    subject: str = Field(description="The learner, as a keyed pseudonym.")
    purpose: str = Field(description="Why the role reaches the data: tutoring, instruction, guardian access, …")
    route: str
    prev: str = Field(description="The previous record's hash.")
    hash: str = Field(description="SHA-256 over this record's other fields.")


class AuditTrail(BaseModel):
    records: list[AuditRecord] = Field(description="Newest first.")
