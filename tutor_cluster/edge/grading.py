"""Checking an answer attempt against its exercise, and the feedback that teaches from the result.

Maths: the answer is read as learners write it (:mod:`tutor_cluster.edge.answers`), its symbolic work runs through a
:class:`~tutor_cluster.edge.checker.Checker` (worker processes under a hard budget on a service), and the outcome
says what to tell the learner: right, right but unsimplified, right value in the wrong unit or form, wrong (with
the misconception seen and the learner's next hint), or unreadable (what to type). Python: syntax and structure.
"""

from __future__ import annotations

import re

from tutor_cluster.config.edge import Exercise
from tutor_cluster.edge import code as code_check
from tutor_cluster.edge import maths
from tutor_cluster.edge.answers import Reading
from tutor_cluster.edge.checker import Checker, CheckRefused
from tutor_cluster.edge.signals import Check, EdgeReply
from tutor_cluster.edge.units import unit_matches

#: What every refusal and unreadable attempt tells the learner to type.
WHAT_TO_TYPE = "Type just your final answer, like 3/4, 2.5, 9 apples or x = 2."
_DECIMAL = re.compile(r"[+-]?\d*\.(\d+)")
_FORM_WORDS = {"integer": "a whole number", "decimal": "a decimal", "fraction": "a fraction",
               "mixed_number": "a mixed number", "percent": "a percentage", "words": "words",
               "expression": "an expression", "equation": "an equation"}


class EdgeInputError(ValueError):
    """The learner's submission cannot be checked (hostile or over limits); maps to HTTP 422 naming ``field``.
    ``busy``: no checker was free in time (503 with Retry-After instead)."""

    def __init__(self, field: str, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.busy = busy


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def check_math(exercise: Exercise, message: str, reading: Reading | None, checker: Checker) -> Check:
    """``reading``: the answer as read from ``message`` (None: the message is checked as typed)."""
    expr = reading.expression if reading else message
    if not any(c.isupper() for c in exercise.answer):
        expr = expr.lower()  # "X = 2" answers "x = 2"
    wrongs = [m for m in exercise.misconceptions if m.answer is not None]
    try:
        g = checker.grade(expr, exercise.answer, require_solved=exercise.solve, tolerance=exercise.tolerance,
                          misconceptions=tuple(m.answer for m in wrongs if m.answer is not None))
    except CheckRefused as exc:
        if exc.busy:
            raise EdgeInputError("message", f"The answer checker is busy: {exc}.", busy=True) from exc
        raise EdgeInputError("message", f"This answer is too complex to check: {exc}. {WHAT_TO_TYPE}") from exc
    except maths.MathLimitError as exc:
        raise EdgeInputError("message", f"This answer is too long or complex to check: {exc}. {WHAT_TO_TYPE}") from exc
    except maths.MathInputError as exc:
        return Check(exercise_id=exercise.id, kind="math", correct=None, outcome="unreadable",
                     detail=f"I couldn't read '{_short(message)}' as an answer ({exc}). {WHAT_TO_TYPE}")
    v = g.verdict
    base = {"exercise_id": exercise.id, "kind": "math", "answer": expr,
            "recognised": reading.describe() if reading else None, "unit": reading.unit if reading else None}
    said = f"'{_short(message)}'" if reading is None else f"'{_short(message)}' (read as {reading.describe()})"
    if not v.solved:
        return Check(**base, correct=False, outcome="unsolved",
                     detail=f"'{v.normalised}' is not solved yet: finish with the variable alone on one side.")
    if not v.correct:
        tags = [wrongs[i].tag for i in g.misconceptions]
        return Check(**base, correct=False, outcome="incorrect", misconceptions=tags,
                     detail=f"{said} is not equivalent to the expected answer.")
    if exercise.units and reading is not None and reading.unit and not unit_matches(reading.unit, exercise.units):
        return Check(**base, correct=None, outcome="wrong_unit",
                     detail=f"The number is right, but '{reading.unit}' is not the unit here: the answer is in "
                            f"{exercise.units[0]}.")
    if exercise.unit_required and not (reading is not None and reading.unit):
        return Check(**base, correct=None, outcome="missing_unit",
                     detail=f"The number is right — in which unit? Answer in {exercise.units[0]}.")
    places = _places(reading.expression) if reading is not None and reading.form == "decimal" else None
    if exercise.decimal_places is not None and places is not None and places != exercise.decimal_places:
        return Check(**base, correct=None, outcome="wrong_form",
                     detail=f"The value is right, but round it to {exercise.decimal_places} decimal places.")
    if exercise.forms and reading is not None and reading.form not in exercise.forms:
        wanted = " or ".join(_FORM_WORDS[f] for f in exercise.forms)
        return Check(**base, correct=None, outcome="wrong_form",
                     detail=f"The value is right, but write it as {wanted}.")
    if exercise.simplest_form and not (reading.simplest if reading is not None else True):
        return Check(**base, correct=True, outcome="unsimplified",
                     detail=f"{said} is right, but it is not in its simplest form yet.")
    return Check(**base, correct=True, outcome="correct", detail=f"{said} is equivalent to the expected answer.")


def _places(expression: str) -> int | None:
    """Decimal places of a number as written ("3.14" → 2), None when it is not one plain decimal."""
    m = _DECIMAL.fullmatch(expression)
    return len(m.group(1)) if m else None


def check_code(exercise: Exercise, answer: str) -> Check:
    try:
        syn = code_check.check_syntax(answer)
    except code_check.CodeInputError as exc:
        raise EdgeInputError("message", f"cannot check this code: {exc}") from exc
    if not syn.ok:
        return Check(exercise_id=exercise.id, kind="python", correct=False, outcome="incorrect",
                     detail=f"SyntaxError at line {syn.line}, column {syn.column}: {syn.message}",
                     line=syn.line, column=syn.column)
    tags = [m.tag for m in exercise.misconceptions if m.pattern is not None and re.search(m.pattern, answer)]
    if exercise.requires_function and exercise.requires_function not in syn.functions:
        return Check(exercise_id=exercise.id, kind="python", correct=False, outcome="incorrect",
                     detail=f"The code parses, but defines no function named {exercise.requires_function!r}.",
                     misconceptions=tags)
    return Check(exercise_id=exercise.id, kind="python", correct=None, outcome="needs_review",
                 detail="The code parses; it needs a review.", misconceptions=tags)


def feedback(exercise: Exercise, check: Check) -> EdgeReply | None:
    """The edge's reply to a checked attempt; None when a model should look (code that parses)."""
    if check.outcome == "correct":
        return EdgeReply(text=f"Correct! {check.detail} Well done.", reason="edge: answer verified deterministically")
    if check.outcome == "unsimplified":
        return EdgeReply(text=f"Correct — can you simplify it? {check.detail}",
                         reason="edge: right answer, not in simplest form")
    if check.outcome in ("wrong_unit", "missing_unit", "wrong_form"):
        return EdgeReply(text=f"Nearly! {check.detail}", reason=f"edge: right value, {check.outcome.replace('_', ' ')}")
    if check.outcome == "unreadable":
        return EdgeReply(text=check.detail, reason="edge: the attempt could not be read as an answer")
    if check.outcome == "needs_review":
        return None
    known = {m.tag: m.feedback for m in exercise.misconceptions if m.feedback}
    seen = next((known[t] for t in check.misconceptions if t in known), None)
    return EdgeReply(text=f"Not quite. {check.detail}{' ' + seen if seen else ''} Try again.",
                     reason=f"edge: {check.kind} check settled the answer as incorrect",
                     hint_from=exercise.id if exercise.hints else None)


def hint_reply(exercise: Exercise) -> EdgeReply | None:
    """A help request on an exercise with hints: the learner's next hint, at the edge."""
    if not exercise.hints:
        return None
    return EdgeReply(text="Let's take it one step at a time.", reason="edge: hint served from the exercise",
                     hint_from=exercise.id)


def with_hint(reply: EdgeReply, exercise: Exercise | None, given: int) -> str:
    """The reply's text, ending with hint number ``given`` (1-based: how many this learner has been given of the
    exercise, this one included; past the last, the last again)."""
    if reply.hint_from is None or exercise is None or not exercise.hints:
        return reply.text
    hint = exercise.hints[min(max(given, 1), len(exercise.hints)) - 1]
    return f"{reply.text} Hint: {hint}"
