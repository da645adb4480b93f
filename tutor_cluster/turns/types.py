"""What the turn service takes and returns: typed requests, results and learner views. The HTTP API serves these
shapes as they are (``api/protocol.py`` re-exports them), so a field is declared once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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



#: Age bands: under 13 needs a guardian's consent in most jurisdictions (COPPA, GDPR Art. 8).
AgeBand = Literal["under_13", "13_15", "16_17", "adult"]
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}$"
_NAME = r"^[^\x00-\x1f\x7f]+$"


class Registration(BaseModel):
    """``POST /v1/learners``: a learner's personal data. It is kept only in the vault of the learner's home
    region, encrypted; every other tier sees the opaque id and keyed pseudonym the registration returns."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=200, pattern=_NAME, description="What the tutor calls them.")
    email: str | None = Field(default=None, max_length=320, pattern=_EMAIL, description="The learner's e-mail.")
    birth_date: dt.date | None = Field(default=None, description="YYYY-MM-DD; the age band is derived from it.")
    age_band: AgeBand | None = Field(default=None, description="When no birth date is given.")
    guardian_email: str | None = Field(default=None, max_length=320, pattern=_EMAIL,
                                       description="How to reach a parent or guardian.")
    home_region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$", description=(
        "Where the learner's personal data lives; default: the region this deployment serves."))

    @model_validator(mode="after")
    def _age_given(self) -> "Registration":
        if self.birth_date is None and self.age_band is None:
            raise ValueError("give birth_date (YYYY-MM-DD) or age_band (under_13, 13_15, 16_17, adult)")
        return self


class Registered(BaseModel):
    learner_id: str = Field(description="The learner's opaque id: use it on every other route.")
    region: str = Field(description="The home region whose vault holds the personal data.")
    age_band: AgeBand
    created_at: float = Field(description="When the learner was registered (Unix time).")


class ErasureReceipt(BaseModel):
    """What ``DELETE /v1/learners/{id}`` did (the same receipt again on a repeat)."""

    receipt_id: str
    learner_id: str
    status: Literal["completed"]
    requested_at: float
    completed_at: float
    erased: list[str] = Field(description="What was deleted: personal data and key (vault), memory, relations.")
    unlinkable: bool = Field(description=(
        "True when the learner's key was destroyed, so pseudonymous rows about them (analytics events, spend "
        "ledger, audit records) can no longer be joined to them; False for a learner who was never registered "
        "(their pseudonym is keyed by the service's secret alone)."))


class LearnerExport(BaseModel):
    """``GET /v1/learners/{id}/export``: everything kept about the learner, as one document (GDPR Art. 20)."""

    format: Literal["tutor-cluster.learner-export/1"] = "tutor-cluster.learner-export/1"
    exported_at: float
    tenant: str
    learner_id: str
    pseudonym: str = Field(description="The keyed pseudonym pseudonymous rows (events, ledger) carry.")
    registration: dict[str, Any] | None = Field(description="Personal data from the vault (null: not registered).")
    memory: LearnerView | None = Field(description="Mastery, misconceptions, preferences, recent turns.")
    audit: list[AuditRecord] = Field(description="Every recorded access to the learner's data, newest first.")
