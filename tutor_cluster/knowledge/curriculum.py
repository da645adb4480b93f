"""Curriculum folder format: units → skills → documents (explanations, worked examples, exercises).

A curriculum is a folder of ``*.jsonl`` and ``*.md`` files (searched recursively, read in path order).

JSONL: one JSON object per line, ``kind`` picks the record type::

    {"kind": "unit", "id": "fractions", "title": "Fractions", "grade": 5, "locale": "en", "standards": ["CCSS.MATH.CONTENT.5.NF.A.1"]}
    {"kind": "skill", "id": "fractions.add", "unit": "fractions", "title": "Adding fractions"}
    {"kind": "explanation", "id": "...", "skill": "fractions.add", "title": "...", "body": "..."}
    {"kind": "worked_example", "id": "...", "skill": "...", "title": "...", "problem": "...", "steps": ["..."], "answer": "..."}
    {"kind": "exercise", "id": "...", "skill": "...", "prompt": "...", "answer": "...", "hints": ["..."]}

Markdown: a YAML front matter block (``id``, ``skill``, ``title``, optional ``kind``: explanation or
worked_example, optional ``standards``) followed by the body; headings (``#``, ``##``, ...) become sections.

Every problem is a :class:`CurriculumError` naming ``file:line: field: message``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tutor_cluster.jsonl import JsonlError, read_jsonl

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=100_000)]


class CurriculumError(ValueError):
    """Invalid curriculum input; the message is one line: ``file:line: field: message``."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        self.file, self.line, self.field = file, line, field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(_Record):
    kind: Literal["unit"] = "unit"
    id: Id = Field(description="Stable unit id.")
    title: Text
    grade: int = Field(ge=0, le=13, description="School grade (0 = kindergarten, 13 = post-secondary).")
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="BCP-47 language, e.g. 'en'.")
    standards: list[str] = Field(default_factory=list, description="Standard codes, e.g. CCSS.")


class CurriculumSkill(_Record):
    kind: Literal["skill"] = "skill"
    id: Id = Field(description="Skill id; the edge tier's exercise skills use the same ids.")
    unit: Id = Field(description="Id of the unit the skill belongs to.")
    title: Text
    standards: list[str] = Field(default_factory=list)


class _Document(_Record):
    id: Id = Field(description="Document id, unique in the curriculum; chunk ids are '<id>#<n>'.")
    skill: Id = Field(description="Id of the skill the document teaches.")
    standards: list[str] = Field(default_factory=list, description="Standard codes beyond the unit's and skill's.")


class Explanation(_Document):
    kind: Literal["explanation"] = "explanation"
    title: Text
    body: Text


class WorkedExample(_Document):
    kind: Literal["worked_example"] = "worked_example"
    title: Text
    problem: Text
    steps: list[Text] = Field(min_length=1)
    answer: Text


class CurriculumExercise(_Document):
    kind: Literal["exercise"] = "exercise"
    prompt: Text
    answer: Text = Field(description="Kept in the payload, never in the embedded text (practice mode).")
    hints: list[Text] = Field(default_factory=list)


Document = Explanation | WorkedExample | CurriculumExercise
_RECORD = TypeAdapter(Annotated[Unit | CurriculumSkill | Document, Field(discriminator="kind")])


class Located(BaseModel):
    """A record and where it came from (relative path, first line)."""

    model_config = ConfigDict(frozen=True)

    record: Annotated[Unit | CurriculumSkill | Explanation | WorkedExample | CurriculumExercise,
                      Field(discriminator="kind")]
    source: str
    line: int


class MarkdownDoc(_Record):
    """A Markdown explanation or worked example: front matter + sections."""

    kind: Literal["explanation", "worked_example"] = "explanation"
    id: Id
    skill: Id
    title: Text
    standards: list[str] = Field(default_factory=list)
    body: str = Field(default="", exclude=True)


class Curriculum(BaseModel):
    """A validated curriculum: every reference resolves, every id is unique."""

    model_config = ConfigDict(frozen=True)

    units: dict[str, Unit]
    skills: dict[str, CurriculumSkill]
    documents: list[Located]
    files: int

    def unit_of(self, skill_id: str) -> Unit:
        return self.units[self.skills[skill_id].unit]


def _field(err: dict) -> str:
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in _KIND_TAGS)]
    return ".".join(loc) or "(record)"


_KIND_TAGS = {"unit", "skill", "explanation", "worked_example", "exercise"}


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field; remove it or check its spelling"
    if err["type"] == "union_tag_invalid":
        return f"unknown kind; use one of {sorted(_KIND_TAGS)}"
    if err["type"] == "union_tag_not_found":
        return "missing; every record needs a 'kind'"
    return err["msg"].removeprefix("Value error, ")


def _validation_error(exc: ValidationError, source: str, line: int) -> CurriculumError:
    err = exc.errors(include_url=False)[0]
    field = "kind" if err["type"] in ("union_tag_invalid", "union_tag_not_found") else _field(err)
    return CurriculumError(source, line, field, _message(err))


def _read_jsonl(path: Path, source: str) -> list[Located]:
    out = []
    try:
        for number, data in read_jsonl(_text(path, source).splitlines(), source):
            try:
                out.append(Located(record=_RECORD.validate_python(data), source=source, line=number))
            except ValidationError as exc:
                raise _validation_error(exc, source, number) from None
    except JsonlError as exc:
        raise CurriculumError(source, exc.line, None, exc.message) from None
    return out


def _text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CurriculumError(source, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_markdown(path: Path, source: str) -> Located:
    text = _text(path, source)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise CurriculumError(source, 1, None, "expected YAML front matter starting with '---'")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise CurriculumError(source, 1, None, "front matter is not closed with '---'") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CurriculumError(source, (mark.line + 2) if mark else 1, None, "front matter is not valid YAML") from None
    if not isinstance(meta, dict):
        raise CurriculumError(source, 2, None, "front matter must be a mapping")

    def line_of(key: str) -> int:
        return next((i + 1 for i in range(1, end) if lines[i].startswith(f"{key}:")), 1)

    body = "\n".join(lines[end + 1:])
    if not body.strip():
        raise CurriculumError(source, end + 2, "body", "the document has no text after the front matter")
    try:
        doc = MarkdownDoc.model_validate({**meta, "body": body})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        raise CurriculumError(source, line_of(key), _field(err), _message(err)) from None
    record: Document
    if doc.kind == "explanation":
        record = Explanation(id=doc.id, skill=doc.skill, title=doc.title, body=body, standards=doc.standards)
    else:  # a worked example in Markdown: the whole body is the solution text
        record = WorkedExample(id=doc.id, skill=doc.skill, title=doc.title, problem=doc.title, steps=[body],
                               answer="(see steps)", standards=doc.standards)
    return Located(record=record, source=source, line=end + 2)


def load_curriculum(folder: str | Path) -> Curriculum:
    """Read, validate and cross-check a curriculum folder."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise CurriculumError(str(root), None, None, "not a directory")
    records: list[Located] = []
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".md")
                   and not p.name.startswith(".") and p.name.lower() != "readme.md")
    for path in files:
        source = path.relative_to(root).as_posix()
        if path.suffix == ".jsonl":
            records += _read_jsonl(path, source)
        else:
            records += [_read_markdown(path, source)]
    if not records:
        raise CurriculumError(str(root), None, None, "no curriculum records (*.jsonl / *.md) found")

    seen: dict[tuple[str, str], Located] = {}
    for item in records:
        family = item.record.kind if item.record.kind in ("unit", "skill") else "document"
        key = (family, item.record.id)
        if key in seen:
            first = seen[key]
            raise CurriculumError(item.source, item.line, "id",
                                  f"duplicate {family} id {item.record.id!r} (first at {first.source}:{first.line})")
        seen[key] = item
    units = {i.record.id: i.record for i in records if isinstance(i.record, Unit)}
    skills = {i.record.id: i.record for i in records if isinstance(i.record, CurriculumSkill)}
    for item in records:
        rec = item.record
        if isinstance(rec, CurriculumSkill) and rec.unit not in units:
            raise CurriculumError(item.source, item.line, "unit", f"unknown unit {rec.unit!r}")
        if not isinstance(rec, (Unit, CurriculumSkill)) and rec.skill not in skills:
            raise CurriculumError(item.source, item.line, "skill", f"unknown skill {rec.skill!r}")
    documents = [i for i in records if not isinstance(i.record, (Unit, CurriculumSkill))]
    return Curriculum(units=units, skills=skills, documents=documents, files=len(files))
