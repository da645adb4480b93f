"""Python answer checking by syntax: parse with ``ast`` (never executed), report line and column."""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from tutor_cluster import constants


class CodeInputError(ValueError):
    """The submitted code cannot be checked at all (too long, NUL bytes)."""


@dataclass(frozen=True)
class SyntaxVerdict:
    ok: bool
    message: str | None = None
    line: int | None = None
    column: int | None = None
    #: Names of top-level functions defined, for structural checks.
    functions: tuple[str, ...] = ()


def check_syntax(source: str) -> SyntaxVerdict:
    if "\x00" in source:
        raise CodeInputError("code contains NUL bytes")
    if len(source) > constants.MAX_CODE_CHARS:
        raise CodeInputError(f"code is longer than {constants.MAX_CODE_CHARS} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings about learners' escapes are not errors
            tree = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        return SyntaxVerdict(False, exc.msg, exc.lineno, exc.offset)
    except (RecursionError, MemoryError, ValueError) as exc:
        raise CodeInputError("code is nested too deeply to check") from exc
    functions = tuple(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return SyntaxVerdict(True, functions=functions)
