"""The learner's context (what memory keeps) and the pure function that applies one update to it."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.config.learner import MemoryPolicy
from tutor_cluster.config.privacy import RetentionConfig
from tutor_cluster.identity import split_learner_key
from tutor_cluster.learner.bkt import step as bkt_step

_LANG = r"^[a-z]{2,3}(-[A-Z]{2})?$"
#: Client idempotency keys remembered per learner with the hash of their body.
REQUEST_BODIES_KEPT = 100


class Preferences(BaseModel):
    """Settable by API (PATCH); unknown keys and bad values are rejected naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_style: Literal["visual", "verbal", "examples", "socratic"] | None = Field(
        default=None, description="How explanations should be framed.")
    pace: Literal["slow", "normal", "fast"] | None = Field(default=None, description="How fast to move on.")
    language: str | None = Field(default=None, pattern=_LANG, description="BCP-47 language, e.g. 'en' or 'pt-BR'.")
    grade: int | None = Field(default=None, ge=0, le=13, description="School grade (0 = K); filters the curriculum.")


class Misconception(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int = 0
    last_seen: float = 0.0
    skill: str | None = None


class TurnSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    turn_id: str
    at: float
    skill: str | None = None
    intent: str | None = None
    correct: bool | None = None
    summary: str = Field(default="", max_length=300)


class SkillState(BaseModel):
    model_config = ConfigDict(frozen=True)

    mastery: float = Field(description="P(known) before the next attempt (BKT).")
    unknown: float = Field(description="P(unknown), carried separately for precision (see bkt.State).")
    attempts: int = 0
    correct: int = 0


class LearnerContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    learner_id: str = Field(description="The learner's id within its tenant.")
    tenant: str | None = Field(default=None, description="The learner's tenant (None: written before tenancy).")
    version: int = 0
    skills: dict[str, SkillState] = Field(default_factory=dict)
    misconceptions: dict[str, Misconception] = Field(default_factory=dict)
    preferences: Preferences = Field(default_factory=Preferences)
    recent: list[TurnSummary] = Field(default_factory=list)
    hints: dict[str, int] = Field(default_factory=dict, description=(
        "Exercise id → hints given so far (the next wrong answer or help request gets the next one)."))
    request_bodies: dict[str, str] = Field(default_factory=dict, description=(
        "Idempotency key → hash of the body it was applied with (the last REQUEST_BODIES_KEPT)."))
    created_at: float = 0.0
    updated_at: float = 0.0


class LearnerUpdate(BaseModel):
    """One change to a learner's context. ``turn_id`` is the idempotency key: applied at most once."""

    model_config = ConfigDict(frozen=True)

    turn_id: str = Field(min_length=1, max_length=128)
    skill: str | None = None
    correct: bool | None = Field(default=None, description="Graded outcome; updates mastery by BKT.")
    misconceptions: list[str] = Field(default_factory=list)
    summary: TurnSummary | None = None
    preferences: Preferences | None = Field(default=None, description="Fields set here replace the stored ones.")
    hint_for: str | None = Field(default=None, description="An exercise id whose next hint this turn gives.")
    body_hash: str | None = Field(default=None, description=(
        "Hash of the request that carried this update under a client's idempotency key (kept in the context, "
        "so a reused key with another body can be told from a retry)."))


def new_context(key: str, now: float | None = None) -> LearnerContext:
    """A new learner's context; ``key`` is its learner key (``tenant/learner_id``)."""
    t = time.time() if now is None else now
    tenant, learner_id = split_learner_key(key)
    return LearnerContext(learner_id=learner_id, tenant=tenant, created_at=t, updated_at=t)


def apply_update(ctx: LearnerContext, upd: LearnerUpdate, policy: MemoryPolicy, now: float | None = None) -> LearnerContext:
    """The new context after ``upd``; pure (stores call it inside their transaction)."""
    t = time.time() if now is None else now
    skills = dict(ctx.skills)
    if upd.skill is not None and upd.correct is not None:
        params = policy.params(upd.skill)
        state = skills.get(upd.skill) or SkillState(mastery=params.prior, unknown=1 - params.prior)
        unknown, known = bkt_step((state.unknown, state.mastery), upd.correct, params)
        skills[upd.skill] = SkillState(
            mastery=known, unknown=unknown,
            attempts=state.attempts + 1,
            correct=state.correct + int(upd.correct),
        )
    misconceptions = dict(ctx.misconceptions)
    for tag in upd.misconceptions:
        old = misconceptions.get(tag) or Misconception(skill=upd.skill)
        misconceptions[tag] = Misconception(count=old.count + 1, last_seen=t, skill=old.skill or upd.skill)
    recent = list(ctx.recent)
    if upd.summary is not None and policy.recent_turns:
        recent = (recent + [upd.summary])[-policy.recent_turns:]
    prefs = ctx.preferences
    if upd.preferences is not None:
        prefs = prefs.model_copy(update=upd.preferences.model_dump(exclude_unset=True))
    hints = ctx.hints
    if upd.hint_for is not None:
        hints = {**hints, upd.hint_for: hints.get(upd.hint_for, 0) + 1}
    bodies = ctx.request_bodies
    if upd.body_hash is not None:
        bodies = dict(list({**bodies, upd.turn_id: upd.body_hash}.items())[-REQUEST_BODIES_KEPT:])
    return ctx.model_copy(update={
        "version": ctx.version + 1, "skills": skills, "misconceptions": misconceptions,
        "recent": recent, "preferences": prefs, "updated_at": t, "request_bodies": bodies, "hints": hints,
    })


def retained(ctx: LearnerContext, retention: RetentionConfig, now: float | None = None) -> LearnerContext | None:
    """``ctx`` as retention allows it to be kept at ``now``: None when the whole context expired
    (``memory_days`` since its last update), else without the turn summaries older than ``turn_summaries_days``.
    Pure; the memory actors apply it on every read and write, the retention sweep to the stores."""
    t = time.time() if now is None else now
    gone = retention.cutoff(retention.memory_days, t)
    if gone is not None and ctx.updated_at < gone:
        return None
    old = retention.cutoff(retention.turn_summaries_days, t)
    if old is not None and any(s.at < old for s in ctx.recent):
        return ctx.model_copy(update={"recent": [s for s in ctx.recent if s.at >= old]})
    return ctx
