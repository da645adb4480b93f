"""Settings of the edge tier, and the exercise set it checks answers against (schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    settle_answers: bool = Field(default=True, description="Reply to answer attempts the checkers decide, without a model.")
    redact_pii: bool = Field(default=True, description="Redact e-mails and phone numbers before any model sees them.")
    block_injection: bool = Field(default=True, description="Refuse prompt-injection attempts at the edge.")
    call_timeout_s: float = Field(default=10.0, gt=0, description=(
        "The gateway's deadline for one edge call; past it the turn is 503 edge_timeout with Retry-After (the "
        "client never hangs)."))
    check_isolation: Literal["process", "inline"] = Field(default="process", description=(
        "process: the symbolic work of a maths check runs in worker processes under a CPU-time limit the kernel "
        "enforces (RLIMIT_CPU) and a memory limit; inline: in the replica itself, bounded only by the size "
        "estimate (unit tests, debugging)."))
    check_workers: int = Field(default=2, ge=1, le=64, description="Check worker processes per edge replica.")
    check_cpu_s: int = Field(default=2, ge=1, le=60, description=(
        "CPU seconds one maths check may use (whole seconds: the kernel's granularity, so at most this + 1)."))
    check_wall_s: float = Field(default=6.0, gt=0, description=(
        "Seconds a check may wait for a free worker and run; past it the turn is 503 edge_busy with Retry-After. "
        "Must be below call_timeout_s."))
    check_memory_mb: int = Field(default=1024, ge=256, description="Address-space limit of a check worker (MiB).")

    @model_validator(mode="after")
    def _bounds(self) -> "EdgeConfig":
        if self.check_wall_s >= self.call_timeout_s:
            raise ValueError(f"edge.check_wall_s ({self.check_wall_s}) must be below edge.call_timeout_s "
                             f"({self.call_timeout_s}), so a slow check is refused before the gateway gives up")
        return self


AnswerFormName = Literal["integer", "decimal", "fraction", "mixed_number", "percent", "words", "expression",
                         "equation"]


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable skill id, e.g. 'fractions.add'.")
    title: str = Field(description="Human-readable name.")
    keywords: list[str] = Field(default_factory=list, description="Words that suggest a message is about this skill.")


class MisconceptionPattern(BaseModel):
    """A known wrong answer (maths: any equivalent form) or code pattern (regex), and its tag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(pattern=r"^[a-z0-9_]{1,64}$", description="Stable tag, e.g. 'added_denominators'.")
    answer: str | None = Field(default=None, description="Maths: the wrong answer this misconception produces.")
    pattern: str | None = Field(default=None, description="Python: a regex that matches the mistake in code.")
    feedback: str | None = Field(default=None, description="What to tell the learner when it is seen.")

    @model_validator(mode="after")
    def _one(self) -> "MisconceptionPattern":
        if (self.answer is None) == (self.pattern is None):
            raise ValueError(f"misconception {self.tag!r}: give exactly one of 'answer' or 'pattern'")
        return self


class Exercise(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable exercise id, sent by clients as exercise_id.")
    skill: str = Field(description="Id of the skill this exercise practises.")
    kind: Literal["math", "python"] = Field(description="Which deterministic checker grades answers.")
    prompt: str = Field(description="The task shown to the learner.")
    answer: str = Field(description="Reference answer (maths: any equivalent form; python: a model solution).")
    solve: bool = Field(default=False, description="Maths: the answer must be in solved form (x = ...).")
    requires_function: str | None = Field(default=None, description="Python: a top-level function that must be defined.")
    hints: list[str] = Field(default_factory=list, description=(
        "Hints, in the order they are given (each learner's next one: the count is kept in learner memory)."))
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$", description=(
        "Language of the exercise: how '1,000' / '0,75' / '1.000' and number words are read when the turn gives "
        "no language."))
    units: list[str] = Field(default_factory=list, description=(
        "Maths: accepted units, any spelling (e.g. [apples, apple] or [$, dollars]; '%' makes 50% mean 50). A "
        "bare number is right; a right number with another unit gets unit feedback. Empty: units are ignored."))
    unit_required: bool = Field(default=False, description="Maths: a right number without one of the units is "
                                "not yet accepted ('which unit?').")
    tolerance: float | None = Field(default=None, ge=0, description=(
        "Maths: numeric answers within this distance of the reference are right (e.g. 0.01 for 2 decimal places)."))
    decimal_places: int | None = Field(default=None, ge=0, le=12, description=(
        "Maths: a right decimal must be written to this many places ('round to 2 decimal places'); another "
        "rounding of a right value gets 'round it to N decimal places'. Pair it with a tolerance."))
    forms: list[AnswerFormName] | None = Field(default=None, description=(
        "Maths: forms accepted for a right value (integer, decimal, fraction, mixed_number, percent, words, "
        "expression, equation); another form gets 'right value — write it as …'. None: any form."))
    simplest_form: bool = Field(default=False, description=(
        "Maths: a right answer not in simplest form (6/8, 1/2 + 1/4) gets 'correct — can you simplify it?'."))

    @model_validator(mode="after")
    def _maths_fields(self) -> "Exercise":
        if self.kind != "math":
            used = [f for f in ("units", "unit_required", "tolerance", "decimal_places", "forms", "simplest_form")
                    if getattr(self, f) not in (None, False, [])]
            if used:
                raise ValueError(f"exercise {self.id!r}: {', '.join(used)} apply to maths exercises only (kind: math)")
        if self.unit_required and not self.units:
            raise ValueError(f"exercise {self.id!r}: unit_required needs the accepted units under 'units'")
        return self
    misconceptions: list[MisconceptionPattern] = Field(
        default_factory=list, description="Known wrong answers / code patterns, tagged on wrong attempts.")


class ExerciseSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    skills: list[Skill] = Field(default_factory=list)
    exercises: list[Exercise] = Field(default_factory=list)
    _by_id: dict[str, Exercise] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> "ExerciseSet":
        skill_ids = {s.id for s in self.skills}
        seen: set[str] = set()
        for i, ex in enumerate(self.exercises):
            if ex.skill not in skill_ids:
                raise ValueError(f"exercises[{i}] ({ex.id}): unknown skill {ex.skill!r}; declare it under skills")
            if ex.id in seen:
                raise ValueError(f"exercises[{i}]: duplicate exercise id {ex.id!r}")
            seen.add(ex.id)
        self._by_id = {ex.id: ex for ex in self.exercises}
        return self

    def get(self, exercise_id: str) -> Exercise | None:
        return self._by_id.get(exercise_id)

    def for_skill(self, skill: str) -> list[Exercise]:
        return [ex for ex in self.exercises if ex.skill == skill]
