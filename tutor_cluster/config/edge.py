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
        "client never hangs; bounding the edge's own work is issue 13's)."))


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
    hints: list[str] = Field(default_factory=list, description="Hints, in the order they are given.")
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
