"""JSON-lines input shared by every reader of logs and curricula: one object per line, errors name the line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


class JsonlError(ValueError):
    """A malformed line; the message is ``source:line: what is wrong``."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source, self.line, self.message = source, line, message


def read_jsonl(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; raises :class:`JsonlError` on a bad one."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JsonlError(source, number, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise JsonlError(source, number, "expected a JSON object")
        yield number, row
