"""The edge tier's logic: classify, screen, check answers, and settle what can be settled without a model."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tutor_cluster.config.edge import EdgeConfig, Exercise, ExerciseSet
from tutor_cluster.edge import code as code_check
from tutor_cluster.edge import maths
from tutor_cluster.edge.screening import looks_like_injection, redact_pii
from tutor_cluster.edge.signals import Check, EdgeReply, EdgeResult, EdgeSignals, Intent


class EdgeInputError(ValueError):
    """The learner's submission cannot be checked (hostile or oversized); maps to HTTP 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_HINT = re.compile(r"\b(hint|stuck|clue|help me|don'?t know where to start|give me a tip)\b", re.I)
_QUESTION = re.compile(r"\?|^\s*(why|how|what|when|which|who|explain|can you|could you|is it|does|do)\b", re.I)
_REASONING = re.compile(r"\b(why|prove|explain|derive|compare|difference|intuition|justify|general)\b", re.I)
_SMALLTALK = re.compile(r"\b(weather|football|movie|music|game|joke|girlfriend|boyfriend|party|tiktok)\b", re.I)
_MATHY = re.compile(r"[0-9=+*/^]")


def _skill_for(text: str, exercises: ExerciseSet) -> str | None:
    lowered = text.lower()
    best, score = None, 0
    for skill in exercises.skills:
        hits = sum(1 for k in skill.keywords if k.lower() in lowered)
        if hits > score:
            best, score = skill.id, hits
    return best


def _complexity(text: str) -> tuple[float, dict[str, float]]:
    words = len(text.split())
    features = {
        "words": float(words),
        "reasoning_terms": float(len(_REASONING.findall(text))),
        "math_symbols": float(len(_MATHY.findall(text))),
        "sentences": float(max(1, len(re.findall(r"[.!?]+", text)))),
    }
    score = (
        min(words / 60, 1.0) * 0.45
        + min(features["reasoning_terms"] / 2, 1.0) * 0.35
        + min(features["math_symbols"] / 12, 1.0) * 0.1
        + min((features["sentences"] - 1) / 4, 1.0) * 0.1
    )
    return round(min(score, 1.0), 4), features


def _intent(text: str, exercise: Exercise | None, skill: str | None) -> Intent:
    if _HINT.search(text):
        return "hint_request"
    if exercise is not None and not _QUESTION.search(text):
        return "answer_attempt"
    if skill is None and _SMALLTALK.search(text) and not _MATHY.search(text):
        return "off_topic"
    return "question"


def _math_misconceptions(exercise: Exercise, answer: str) -> list[str]:
    tags = []
    for m in exercise.misconceptions:
        if m.answer is not None:
            try:
                if maths.equivalent(answer, m.answer).correct:
                    tags.append(m.tag)
            except maths.MathInputError:
                continue
    return tags


def _code_misconceptions(exercise: Exercise, code: str) -> list[str]:
    return [m.tag for m in exercise.misconceptions if m.pattern is not None and re.search(m.pattern, code)]


def _check(exercise: Exercise, answer: str) -> Check:
    if exercise.kind == "math":
        try:
            verdict = maths.equivalent(answer, exercise.answer, require_solved=exercise.solve)
        except maths.MathInputError as exc:
            raise EdgeInputError("message", f"cannot check this maths answer: {exc}") from exc
        tags = [] if verdict.correct else _math_misconceptions(exercise, answer)
        if not verdict.solved:
            detail = f"'{verdict.normalised}' is not solved yet: finish with the variable alone on one side."
        elif verdict.correct:
            detail = f"'{verdict.normalised}' is equivalent to the expected answer."
        else:
            detail = f"'{verdict.normalised}' is not equivalent to the expected answer."
        return Check(exercise_id=exercise.id, kind="math", correct=verdict.correct, detail=detail, misconceptions=tags)
    try:
        syn = code_check.check_syntax(answer)
    except code_check.CodeInputError as exc:
        raise EdgeInputError("message", f"cannot check this code: {exc}") from exc
    if not syn.ok:
        return Check(
            exercise_id=exercise.id, kind="python", correct=False,
            detail=f"SyntaxError at line {syn.line}, column {syn.column}: {syn.message}",
            line=syn.line, column=syn.column,
        )
    tags = _code_misconceptions(exercise, answer)
    if exercise.requires_function and exercise.requires_function not in syn.functions:
        return Check(
            exercise_id=exercise.id, kind="python", correct=False,
            detail=f"The code parses, but defines no function named {exercise.requires_function!r}.",
            misconceptions=tags,
        )
    return Check(exercise_id=exercise.id, kind="python", correct=None, detail="The code parses; it needs a review.",
                 misconceptions=tags)


def _feedback(exercise: Exercise, check: Check) -> EdgeReply:
    if check.correct:
        return EdgeReply(text=f"Correct! {check.detail} Well done.", reason="edge: answer verified deterministically")
    hint = f" Hint: {exercise.hints[0]}" if exercise.hints else ""
    known = {m.tag: m.feedback for m in exercise.misconceptions}
    for tag in check.misconceptions:
        if known.get(tag):
            hint = f" {known[tag]}{hint}"
            break
    return EdgeReply(
        text=f"Not quite. {check.detail}{hint} Try again.",
        reason=f"edge: {check.kind} check settled the answer as incorrect",
    )


def analyse(message: str, exercise_id: str | None, exercises: ExerciseSet, config: EdgeConfig,
            history: Sequence[str] = ()) -> EdgeResult:
    """Everything the edge does for one turn. ``history``: the learner's earlier messages of a conversation
    (chat), screened like ``message`` — an injection in any of them refuses the turn, PII is redacted in all.
    Raises :class:`EdgeInputError` for uncheckable submissions."""
    exercise = exercises.get(exercise_id) if exercise_id else None
    if exercise_id and exercise is None:
        raise EdgeInputError("exercise_id", f"unknown exercise {exercise_id!r}")
    text, redacted = redact_pii(message) if config.redact_pii else (message, 0)
    injection = looks_like_injection(message) or any(looks_like_injection(h) for h in history)
    screened = [redact_pii(h)[0] if config.redact_pii else h for h in history]
    skill = exercise.skill if exercise else _skill_for(message, exercises)
    intent = _intent(message, exercise, skill)
    complexity, features = _complexity(message)
    check = _check(exercise, message) if exercise is not None and intent == "answer_attempt" else None
    signals = EdgeSignals(
        intent=intent, skill=skill, complexity=complexity, features=features, check=check,
        pii_redacted=redacted, injection=injection, text=text,
    )
    reply: EdgeReply | None = None
    if injection and config.block_injection:
        reply = EdgeReply(
            text="I can only help with your learning. Let's get back to the exercise!",
            reason="edge: prompt-injection attempt refused",
        )
    elif check is not None and check.correct is not None and config.settle_answers:
        reply = _feedback(exercise, check)  # type: ignore[arg-type]
    elif intent == "hint_request" and exercise is not None and exercise.hints:
        reply = EdgeReply(text=f"Hint: {exercise.hints[0]}", reason="edge: hint served from the exercise")
    return EdgeResult(signals=signals, reply=reply, history=screened)
