"""Deterministic verification of a model's tutoring answer, with the edge tier's own checkers.

In tutoring, ground truth often exists: the exercise's reference answer. A cheap model's reply is accepted when
  - it is not empty;
  - every Python code block in it parses (``ast``, never executed);
  - in practice mode it does not hand over the answer (no expression in it is equivalent to the reference;
    for code exercises, no definition of the required function);
  - in explain mode, the final answer it states (if any) is equivalent to the reference (sympy).
Otherwise the cascade escalates to the next model.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.edge.code import CodeInputError, check_syntax
from tutor_cluster.edge.maths import MathInputError, equivalent

_CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
# Candidate maths in free text: equations like "x = 2", fractions, decimals, integers (longest first).
_MATH = re.compile(r"[a-z]\s*=\s*-?\d+(?:\s*/\s*\d+|\.\d+)?|-?\d+\s*/\s*\d+|-?\d+\.\d+|-?\d+")
_VALUE = r"-?\d+(?:\s*/\s*\d+|\.\d+)?"
_FINAL = re.compile(rf"(?:answer|result)\s*(?:is|:|=|of)?\s*([a-z]\s*=\s*{_VALUE}|{_VALUE})"
                    rf"|(?:so|therefore|thus|hence),?\s*([a-z]\s*=\s*{_VALUE})", re.I)
_INTEGER = re.compile(r"-?\d+")


class VerifySpec(BaseModel):
    """What the reply is checked against (from the exercise the turn is about)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["math", "python"]
    answer: str = Field(description="The exercise's reference answer.")
    mode: Literal["practice", "explain"]
    solve: bool = False
    requires_function: str | None = None


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    reason: str


def _same(candidate: str, reference: str) -> bool:
    try:
        return equivalent(candidate.replace(" ", ""), reference).correct
    except (MathInputError, ValueError, TypeError, ZeroDivisionError):
        return False


def _stated(text: str) -> list[str]:
    """Answers the text states: 'the answer is 3/4', 'result: 0.75', 'so x = 2'."""
    return [a or b for a, b in _FINAL.findall(text)]


def _reveal_candidates(text: str, reference: str) -> list[str]:
    """Expressions that could give the reference away. Equations count only as equations ('x = 2', not every 2
    in 'divide by 2'); a whole-number reference only when stated as the answer; else fractions and decimals."""
    if "=" in reference:
        return [c for c in _MATH.findall(text) if "=" in c]
    if _INTEGER.fullmatch(reference.strip()):
        return _stated(text)
    return [c for c in _MATH.findall(text) if not _INTEGER.fullmatch(c.strip())]


def verify(reply: str, spec: VerifySpec | None) -> Verdict:
    text = reply.strip()
    if not text:
        return Verdict(ok=False, reason="empty answer")
    for block in _CODE_BLOCK.findall(text):
        try:
            verdict = check_syntax(block)
        except CodeInputError as exc:
            return Verdict(ok=False, reason=f"code in the answer cannot be checked: {exc}")
        if not verdict.ok:
            return Verdict(ok=False, reason=f"code in the answer does not parse: {verdict.message} (line {verdict.line})")
    if spec is None:
        return Verdict(ok=True, reason="no reference to check against; the answer is well-formed")
    if spec.kind == "python":
        if spec.mode == "practice" and spec.requires_function and re.search(
                rf"\bdef\s+{re.escape(spec.requires_function)}\s*\(", text):
            return Verdict(ok=False, reason=f"practice mode: the answer gives away {spec.requires_function}()")
        return Verdict(ok=True, reason="code in the answer parses")
    if spec.mode == "practice":
        for candidate in _reveal_candidates(text, spec.answer):
            if _same(candidate, spec.answer):
                return Verdict(ok=False, reason=f"practice mode: the answer reveals the result ({candidate.strip()})")
        return Verdict(ok=True, reason="practice mode: the result is not revealed")
    stated = _stated(text)
    if not stated:
        return Verdict(ok=True, reason="explain mode: no final answer stated")
    final = stated[-1]
    if _same(final, spec.answer):
        return Verdict(ok=True, reason=f"explain mode: the stated answer {final.strip()} is right")
    return Verdict(ok=False, reason=f"explain mode: the stated answer {final.strip()} is wrong")
