"""The edge tier's logic: classify, screen, check answers, and settle what can be settled without a model."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tutor_cluster.config.edge import EdgeConfig, Exercise, ExerciseSet
from tutor_cluster.edge import answers, grading
from tutor_cluster.edge.checker import Checker, InlineChecker
from tutor_cluster.edge.grading import EdgeInputError
from tutor_cluster.edge.screening import looks_like_injection, redact_pii
from tutor_cluster.edge.signals import Check, EdgeReply, EdgeResult, EdgeSignals, Intent

__all__ = ["EdgeInputError", "analyse"]


# Help and frustration, en and es: answered with the learner's next hint (never checked as an answer).
_HINT = re.compile(r"\b(hints?|stuck|clue|help|don'?t (?:get|understand|know)|do not (?:get|understand|know)|no idea|"
                   r"idk|confused|give up|no (?:lo )?entiendo|no s[eé]|ayuda|ay[uú]dame|me ayudas|pista|me rindo|"
                   r"perdid[oa]|i'?m lost|i am lost|too hard|so hard|impossible|imposible|i hate|odio|"
                   r"dif[ií]cil|where (?:do i|to) start|how (?:do i|to) start|what do i do|show me how|"
                   r"can'?t do|cannot do|no puedo|explain (?:it |that |this )?again|otra vez|ni idea|"
                   r"atascad[oa]|no me acuerdo|no recuerdo|qu[eé] hago|give me a tip)\b", re.I)
_QUESTION = re.compile(r"\?|^\s*(why|how|what|when|which|who|explain|can you|could you|is it|does|do)\b", re.I)
_REASONING = re.compile(r"\b(why|prove|explain|derive|compare|difference|intuition|justify|general)\b", re.I)
_SMALLTALK = re.compile(r"\b(weather|football|movie|music|game|joke|girlfriend|boyfriend|party|tiktok)\b", re.I)
# "is it 9?" is a tentative answer; "is a quarter the same as 1/4?" a question, though it holds a number.
_ASKS = re.compile(r"^\W*(?:is|are|does|do|can|could|should|would|will)\s+(?!it\b|that\b|this\b)", re.I)
_TENTATIVE_END = re.compile(r"(?:right|correct|verdad|no)\W*$", re.I)


def _asks(text: str) -> bool:
    t = text.strip()
    return t.endswith("?") and bool(_ASKS.match(t)) and not _TENTATIVE_END.search(t[-16:])


_CODE = re.compile(r"\n|\bdef |\breturn\b|\bprint\(")
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


def _intent(text: str, exercise: Exercise | None, skill: str | None, reading: answers.Reading | None) -> Intent:
    """Intent before checking: with an exercise, help is a hint request, and text that holds no answer (a question,
    an aside) is not checked as one."""
    if exercise is not None and exercise.kind == "python" and _CODE.search(text):
        return "answer_attempt"  # code is checked even when it prints "help"
    if _HINT.search(text):
        return "hint_request"
    if exercise is not None:
        if exercise.kind == "math":
            attempt = (reading is not None and not _asks(text)) or (
                reading is None and not answers.is_prose(text))
        else:
            attempt = not _QUESTION.search(text)
        if attempt:
            return "answer_attempt"
    if skill is None and _SMALLTALK.search(text) and not _MATHY.search(text):
        return "off_topic"
    if exercise is not None and _SMALLTALK.search(text) and reading is None:
        return "off_topic"
    return "question"


def _read(exercise: Exercise | None, message: str, language: str | None) -> answers.Reading | None:
    if exercise is None or exercise.kind != "math":
        return None
    symbolic = any(c.isalpha() for c in exercise.answer.split("=")[-1])
    return answers.read(message, language=language or exercise.language, units=exercise.units, symbolic=symbolic,
                        equation="=" in exercise.answer)


def analyse(message: str, exercise_id: str | None, exercises: ExerciseSet, config: EdgeConfig,
            history: Sequence[str] = (), *, language: str | None = None,
            checker: Checker | None = None) -> EdgeResult:
    """Everything the edge does for one turn. ``history``: the learner's earlier messages of a conversation
    (chat), screened like ``message`` — an injection in any of them refuses the turn, PII is redacted in all.
    ``language``: the learner's, for reading numbers (else the exercise's). ``checker``: where symbolic work runs
    (inline by default). Raises :class:`EdgeInputError` for hostile or over-limit submissions."""
    exercise = exercises.get(exercise_id) if exercise_id else None
    if exercise_id and exercise is None:
        raise EdgeInputError("exercise_id", f"unknown exercise {exercise_id!r}")
    text, redacted = redact_pii(message) if config.redact_pii else (message, 0)
    injection = looks_like_injection(message) or any(looks_like_injection(h) for h in history)
    screened = [redact_pii(h)[0] if config.redact_pii else h for h in history]
    skill = exercise.skill if exercise else _skill_for(message, exercises)
    reading = _read(exercise, message, language)
    intent = _intent(message, exercise, skill, reading)
    complexity, features = _complexity(message)
    check: Check | None = None
    if exercise is not None and intent == "answer_attempt" and not (injection and config.block_injection):
        check = (grading.check_math(exercise, message, reading, checker or InlineChecker())
                 if exercise.kind == "math" else grading.check_code(exercise, message))
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
    elif check is not None and config.settle_answers:
        reply = grading.feedback(exercise, check)  # type: ignore[arg-type]
    elif intent == "hint_request" and exercise is not None:
        reply = grading.hint_reply(exercise)
    return EdgeResult(signals=signals, reply=reply, history=screened)
