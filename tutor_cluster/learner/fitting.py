"""Fitting BKT parameters per skill from an interaction log (JSON lines, in time order)."""

from __future__ import annotations

from pathlib import Path

from tutor_cluster.config.learner import BKTParams
from tutor_cluster.jsonl import JsonlError, read_jsonl
from tutor_cluster.learner.bkt import fit


class LogError(ValueError):
    """A log line is not usable; the message names file and line."""


def read_log(path: Path) -> dict[str, dict[str, list[bool]]]:
    """skill → learner → outcomes, from lines like {"learner_id": "...", "skill": "...", "correct": true}."""
    out: dict[str, dict[str, list[bool]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LogError(f"{path}: cannot read: {exc}") from None
    try:
        rows = list(read_jsonl(lines, str(path)))
    except JsonlError as exc:
        raise LogError(str(exc)) from None
    for no, row in rows:
        for field, kind in (("learner_id", str), ("skill", str), ("correct", bool)):
            if not isinstance(row.get(field), kind):
                raise LogError(f"{path}:{no}: field {field!r} must be a {kind.__name__}")
        out.setdefault(row["skill"], {}).setdefault(row["learner_id"], []).append(row["correct"])
    if not out:
        raise LogError(f"{path}: no interactions")
    return out


def fit_log(path: Path, *, fit_forget: bool = False) -> dict[str, BKTParams]:
    return {skill: fit(list(by_learner.values()), fit_forget=fit_forget)
            for skill, by_learner in sorted(read_log(path).items())}
