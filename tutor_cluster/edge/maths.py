"""Safe symbolic answer checking with sympy.

Learner input is never ``eval``-ed (sympy's ``parse_expr`` does eval): it is parsed with Python's
``ast`` in ``eval`` mode after size and nesting checks, then translated node by node into sympy
objects from a whitelist (numbers, single-letter variables, + - * / ** and unary minus, ``=``).
Exponents and literals are bounded so that nothing like ``9**9**9**9`` is ever computed, and the size of what
checking could expand to (degree, number of terms, digits) is estimated from the tree before any sympy work: a
20-character ``(a+b+c+d+e+f+g+h)^64`` (a billion terms once expanded) is refused, not computed.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

import sympy

from tutor_cluster import constants


class MathInputError(ValueError):
    """The learner's expression is not acceptable input (not well-formed, or not maths)."""


class MathLimitError(MathInputError):
    """The expression is past a size bound (length, nesting, exponent, degree, terms, digits): hostile or over
    limits, refused before any work."""


@dataclass(frozen=True)
class MathVerdict:
    correct: bool
    #: The learner's answer as parsed, for feedback.
    normalised: str
    #: False when the exercise asks for a solved form and the answer is not one.
    solved: bool = True


_ALLOWED_CHARS = re.compile(r"^[0-9a-zA-Z\s+\-*/^().=,]*$")
_IMPLICIT_MUL = re.compile(r"(?<=[0-9)])\s*(?=[a-zA-Z(])")


def _check_shape(text: str) -> str:
    if len(text) > constants.MAX_MATH_CHARS:
        raise MathLimitError(f"expression is longer than {constants.MAX_MATH_CHARS} characters")
    if not _ALLOWED_CHARS.match(text):
        raise MathInputError("expression contains characters that are not maths")
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > constants.MAX_MATH_DEPTH:
                raise MathLimitError(f"expression nests brackets deeper than {constants.MAX_MATH_DEPTH}")
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise MathInputError("unbalanced brackets")
    if depth != 0:
        raise MathInputError("unbalanced brackets")
    text = text.replace("^", "**")
    return _IMPLICIT_MUL.sub("*", text)


def _to_sympy(node: ast.AST) -> sympy.Expr:
    bound = constants.MAX_MATH_EXPONENT
    if isinstance(node, ast.Expression):
        return _to_sympy(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if isinstance(node.value, int) and abs(node.value) > 10**bound:
            raise MathLimitError("number is too large")
        # Exact decimals: 0.75 -> 3/4, so equivalence is exact.
        return sympy.Rational(repr(node.value)) if isinstance(node.value, float) else sympy.Integer(node.value)
    if isinstance(node, ast.Name):
        if len(node.id) != 1:
            raise MathInputError(f"unknown name {node.id!r} (use single-letter variables)")
        return sympy.Symbol(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _to_sympy(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _to_sympy(node.left), _to_sympy(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise MathInputError("division by zero")
            return left / right
        if isinstance(node.op, ast.Pow):
            if not right.is_Integer:
                raise MathInputError("exponents must be whole numbers")
            if abs(int(right)) > bound:
                raise MathLimitError(f"exponents must be whole numbers between -{bound} and {bound}")
            if left.is_Number and abs(left) > 10**6:
                raise MathLimitError("power is too large")
            if left == 0 and right < 0:
                raise MathInputError("division by zero")
            return left**right
    raise MathInputError("only numbers, letters, + - * / ^ and brackets are allowed")


@dataclass(frozen=True)
class _Cost:
    """Upper bounds on an expression's expanded form: polynomial degree, number of terms, digits of numbers."""

    degree: int
    terms: int
    digits: int


def _exponent(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _exponent(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _cost(node: ast.AST) -> _Cost:
    """Estimated before any sympy work; raises :class:`MathInputError` past the bounds in ``constants``."""
    if isinstance(node, ast.Expression):
        return _cost(node.body)
    if isinstance(node, ast.Constant):
        return _Cost(0, 1, len(repr(node.value)))
    if isinstance(node, ast.Name):
        return _Cost(1, 1, 1)
    if isinstance(node, ast.UnaryOp):
        return _cost(node.operand)
    if not isinstance(node, ast.BinOp):
        return _Cost(0, 1, 1)  # refused by the translator with its own message
    left = _cost(node.left)
    if isinstance(node.op, ast.Pow):
        n = _exponent(node.right)
        if n is None:
            return left  # refused by the translator: exponents must be whole numbers
        n = abs(n)
        terms = math.comb(left.terms + n - 1, n) if left.terms > 1 else 1  # multinomial expansion
        cost = _Cost(left.degree * n, terms, left.digits * max(n, 1))
    else:
        right = _cost(node.right)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            cost = _Cost(max(left.degree, right.degree), left.terms + right.terms, max(left.digits, right.digits) + 1)
        else:  # * and / (a quotient is checked as numerator and denominator together)
            cost = _Cost(left.degree + right.degree, left.terms * right.terms, left.digits + right.digits)
    if cost.degree > constants.MAX_MATH_DEGREE:
        raise MathLimitError(f"expression would reach degree {cost.degree} (at most {constants.MAX_MATH_DEGREE})")
    if cost.terms > constants.MAX_MATH_TERMS:
        raise MathLimitError(f"expression would expand past {constants.MAX_MATH_TERMS} terms")
    if cost.digits > constants.MAX_MATH_DIGITS:
        raise MathLimitError(f"numbers would grow past {constants.MAX_MATH_DIGITS} digits")
    return cost


def parse_expression(text: str) -> sympy.Expr:
    """Parse one side of an answer into a sympy expression, safely."""
    cleaned = _check_shape(text.strip())
    if not cleaned.strip():
        raise MathInputError("expression is empty")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except (RecursionError, MemoryError) as exc:
        raise MathLimitError("expression is too deeply nested to read") from exc
    except (SyntaxError, ValueError) as exc:
        raise MathInputError("expression is not well-formed") from exc
    _cost(tree)  # before any sympy object exists: bombs are refused, not computed
    return _to_sympy(tree)


@dataclass(frozen=True)
class _Parsed:
    lhs: sympy.Expr
    rhs: sympy.Expr | None  # None: a bare expression, not an equation


def _parse_answer(text: str) -> _Parsed:
    parts = text.split("=")
    if len(parts) == 1:
        return _Parsed(parse_expression(parts[0]), None)
    if len(parts) == 2:
        return _Parsed(parse_expression(parts[0]), parse_expression(parts[1]))
    raise MathInputError("an answer may contain at most one '='")


def _solutions(eq: _Parsed) -> dict[sympy.Symbol, frozenset] | None:
    """Solution set per variable of an equation with one free variable, else None."""
    if eq.rhs is None:
        return None
    expr = sympy.together(eq.lhs - eq.rhs)
    free = sorted(expr.free_symbols, key=str)
    if len(free) != 1:
        return None
    (var,) = free
    numer = sympy.numer(expr)
    if sympy.degree(numer, var) > 2:
        return None
    return {var: frozenset(sympy.solve(numer, var))}


def _is_solved(eq: _Parsed) -> bool:
    """A bare value, or ``variable = value`` (either way round) with the variable absent from the value."""
    if eq.rhs is None:
        return not eq.lhs.free_symbols
    for var, value in ((eq.lhs, eq.rhs), (eq.rhs, eq.lhs)):
        if isinstance(var, sympy.Symbol) and var not in value.free_symbols:
            return True
    return False


def _same(got: sympy.Expr, want: sympy.Expr, tolerance: float | None) -> bool:
    diff = sympy.cancel(got - want)
    if diff == 0:
        return True
    return tolerance is not None and diff.is_number and bool(abs(diff) <= sympy.Rational(repr(tolerance)))


def equivalent(answer: str, expected: str, *, require_solved: bool = False,
               tolerance: float | None = None) -> MathVerdict:
    """Is the learner's ``answer`` mathematically equivalent to ``expected``?

    Handles numbers in any exact form (3/4, 0.75, 6/8), unsimplified expressions, and equations
    on either side (``x=2`` and ``2=x``); a bare value answers an equation ``x = value``.
    With ``require_solved`` (exercises that ask to solve), restating the equation is not an answer.
    ``tolerance``: numeric answers within this distance of the expected value are right (3.14 for pi to 2 places).
    """
    got = _parse_answer(answer)
    want = _parse_answer(expected)
    normalised = str(got.lhs) if got.rhs is None else f"{got.lhs} = {got.rhs}"
    if require_solved and not _is_solved(got):
        return MathVerdict(False, normalised, solved=False)
    if want.rhs is None and got.rhs is None:
        return MathVerdict(_same(got.lhs, want.lhs, tolerance), normalised)
    if want.rhs is not None and got.rhs is None:
        # "x = 2" expected, "2" given: compare with the value the equation pins down.
        sol = _solutions(want)
        if sol is None:
            return MathVerdict(False, normalised)
        (values,) = sol.values()
        return MathVerdict(len(values) == 1 and _same(got.lhs, next(iter(values)), tolerance), normalised)
    if want.rhs is None:
        return MathVerdict(False, normalised)
    a, b = _solutions(got), _solutions(want)
    if a is not None and b is not None:
        return MathVerdict(a == b, normalised)
    # Identities / several variables: the same equation up to a non-zero factor.
    diff_got = sympy.cancel(got.lhs - got.rhs)
    diff_want = sympy.cancel(want.lhs - want.rhs)
    if diff_want == 0:
        return MathVerdict(diff_got == 0, normalised)
    ratio = sympy.cancel(diff_got / diff_want)
    return MathVerdict(ratio.is_number and ratio != 0, normalised)


@dataclass(frozen=True)
class Grade:
    """One answer graded against an exercise: the verdict and which known wrong answers it matches."""

    verdict: MathVerdict
    #: Indexes (into the ``misconceptions`` asked about) of the known wrong answers the answer is equivalent to.
    misconceptions: tuple[int, ...] = ()


def grade(answer: str, expected: str, *, require_solved: bool = False, tolerance: float | None = None,
          misconceptions: tuple[str, ...] = ()) -> Grade:
    """All the symbolic work for one answer, in one call (what a check worker runs under its budget)."""
    verdict = equivalent(answer, expected, require_solved=require_solved, tolerance=tolerance)
    if verdict.correct:
        return Grade(verdict)
    matched = []
    for i, wrong in enumerate(misconceptions):
        try:
            if equivalent(answer, wrong).correct:
                matched.append(i)
        except MathInputError:
            continue
    return Grade(verdict, tuple(matched))
