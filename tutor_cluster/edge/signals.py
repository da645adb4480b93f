"""What the edge tier learns about a message: the signals the router decides on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Intent = Literal["question", "answer_attempt", "hint_request", "off_topic"]


class Check(BaseModel):
    """Result of a deterministic answer check."""

    model_config = ConfigDict(frozen=True)

    exercise_id: str
    kind: Literal["math", "python"]
    correct: bool | None = Field(description="None when the check could not decide (e.g. code that parses).")
    detail: str = Field(description="What the checker found, in words.")
    line: int | None = None
    column: int | None = None
    misconceptions: list[str] = Field(default_factory=list, description="Known error patterns seen in the answer.")


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
