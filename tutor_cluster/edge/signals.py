"""What the edge tier learns about a message: the signals the router decides on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Intent = Literal["question", "answer_attempt", "hint_request", "off_topic"]
#: What a check found. ``correct`` / ``unsimplified`` are right (graded correct); ``incorrect`` / ``unsolved`` are
#: wrong; ``wrong_unit`` / ``missing_unit`` / ``wrong_form`` are a right value not yet in the asked shape and
#: ``unreadable`` an attempt that could not be read (not graded); ``needs_review``: code that parses.
Outcome = Literal["correct", "unsimplified", "incorrect", "unsolved", "wrong_unit", "missing_unit", "wrong_form",
                  "unreadable", "needs_review"]


class Check(BaseModel):
    """Result of a deterministic answer check."""

    model_config = ConfigDict(frozen=True)

    exercise_id: str
    kind: Literal["math", "python"]
    correct: bool | None = Field(description=(
        "The graded outcome; None when it is not graded (code that parses, a right value in the wrong unit or "
        "form, an unreadable attempt)."))
    outcome: Outcome = Field(default=None, validate_default=True,  # type: ignore[assignment]
                             description="What the check found (see Outcome); derived from correct when absent.")
    detail: str = Field(description="What the checker found, in words.")
    recognised: str | None = Field(default=None, description=(
        "Maths: how the answer was read, e.g. 'mixed number, unit 'apples', sentence'."))
    answer: str | None = Field(default=None, description="Maths: the answer as checked, e.g. '(3 + 1/2)'.")
    unit: str | None = Field(default=None, description="Maths: the unit the learner wrote, if any.")
    line: int | None = None
    column: int | None = None
    misconceptions: list[str] = Field(default_factory=list, description="Known error patterns seen in the answer.")


    @field_validator("outcome", mode="before")
    @classmethod
    def _outcome(cls, value: str | None, info: ValidationInfo) -> str:
        if value is not None:
            return value
        return {True: "correct", False: "incorrect"}.get(info.data.get("correct"), "needs_review")  # type: ignore[arg-type]


class EdgeSignals(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: Intent
    skill: str | None = Field(description="Best-guess skill id, from the exercise or keywords.")
    complexity: float = Field(ge=0, le=1, description="0 = trivial, 1 = needs real reasoning.")
    features: dict[str, float] = Field(default_factory=dict, description="Inputs the complexity score came from.")
    check: Check | None = None
    pii_redacted: int = Field(default=0, description="How many personal-data spans were redacted.")
    injection: bool = Field(default=False, description="The message looks like a prompt-injection attempt.")
    #: The message as the model may see it (PII redacted).
    text: str = ""


class EdgeReply(BaseModel):
    """A deterministic reply the edge gives without any model."""

    model_config = ConfigDict(frozen=True)

    text: str
    reason: str
    hint_from: str | None = Field(default=None, description=(
        "An exercise id: the reply ends with the learner's next hint of it (the turn service picks it from the "
        "hint count in learner memory)."))


class EdgeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    signals: EdgeSignals
    #: Set when the edge settles the turn itself; the turn then never reaches a model.
    reply: EdgeReply | None = None
    #: Earlier messages of a conversation, screened like the turn's own text (PII redacted), in order.
    history: list[str] = Field(default_factory=list)


class EdgeRejection(BaseModel):
    """The submission cannot be checked; the API answers 422 naming ``field``."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    busy: bool = Field(default=False, description="No checker was free in time: 503 with Retry-After, not 422.")
