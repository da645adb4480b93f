"""Heading-aware chunking with overlap, and the content hash that makes re-embedding incremental."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.config.knowledge import ChunkingConfig
from tutor_cluster.knowledge.curriculum import (
    Curriculum,
    CurriculumExercise,
    Explanation,
    Located,
    WorkedExample,
)

_POINT_NAMESPACE = uuid.UUID("6f1c1f3e-4a8e-5d39-9a51-7e3b5c0d2a10")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Chunk(BaseModel):
    """One retrievable piece of curriculum; everything but ``vector`` is the Qdrant payload."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str = Field(description="Stable id: '<document id>#<n>'.")
    doc_id: str
    kind: str
    title: str
    section: str = Field(description="Heading path inside the document ('' at the top).")
    text: str
    skill: str
    unit: str
    grade: int
    locale: str
    standards: list[str]
    source: str = Field(description="'file:line' of the document.")
    answer: str | None = Field(default=None, description="Exercises only; never embedded nor put in prompts.")
    hash: str = Field(default="", description="SHA-256 of the embedded text: a change means re-embed.")
    meta_hash: str = Field(default="", description="SHA-256 of the whole payload: a change means a new version.")

    @property
    def point_id(self) -> str:
        return point_id(self.chunk_id)

    def payload(self) -> dict:
        """What Qdrant stores with the vector (``lang``: the locale's language, for filtering)."""
        return {**self.model_dump(), "lang": self.locale.split("-")[0]}

    def embed_text(self) -> str:
        head = f"{self.title} — {self.section}" if self.section else self.title
        return f"{head}\n{self.text}"

    def with_hash(self) -> "Chunk":
        body = json.dumps(self.model_dump(exclude={"hash", "meta_hash"}), sort_keys=True, ensure_ascii=False)
        return self.model_copy(update={"hash": hashlib.sha256(self.embed_text().encode()).hexdigest(),
                                       "meta_hash": hashlib.sha256(body.encode()).hexdigest()})


def point_id(chunk_id: str) -> str:
    """Qdrant point id (a UUID) of a chunk id."""
    return str(uuid.uuid5(_POINT_NAMESPACE, chunk_id))


def sections(body: str) -> Iterator[tuple[str, str]]:
    """(heading path, text) per Markdown section; text before the first heading has path ''."""
    path: list[tuple[int, str]] = []
    current: list[str] = []
    in_code = False

    def flush() -> Iterator[tuple[str, str]]:
        text = "\n".join(current).strip()
        if text:
            yield " › ".join(t for _, t in path), text

    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            yield from flush()
            current = []
            level = len(match.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, match.group(2))]
        else:
            current.append(line)
    yield from flush()


def _pieces(text: str, limit: int) -> Iterator[str]:
    """Paragraphs, split further by sentence and then by words when longer than ``limit``."""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= limit:
            yield para
            continue
        for sentence in _SENTENCE.split(para):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                yield sentence[:cut].strip()
                sentence = sentence[cut:].strip()
            if sentence:
                yield sentence


def _tail(text: str, n: int) -> str:
    if n <= 0 or len(text) <= n:
        return text if n > 0 else ""
    tail = text[-n:]
    space = tail.find(" ")
    return tail[space + 1:] if 0 <= space < n // 2 else tail


def split_text(text: str, config: ChunkingConfig) -> list[str]:
    """Windows of at most ``max_chars`` (plus overlap), joined from whole paragraphs/sentences where possible."""
    limit = max(config.max_chars - config.overlap_chars, config.max_chars // 2)
    out: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        if current and len(current) + 2 + len(piece) > limit:
            out.append(current)
            current = ""
        current = f"{current}\n\n{piece}" if current else piece
    if current:
        out.append(current)
    if config.overlap_chars:
        out = [out[0], *(f"{_tail(prev, config.overlap_chars)} … {cur}" for prev, cur in zip(out, out[1:]))] if out else out
    return out


def _document_sections(item: Located) -> tuple[str, list[tuple[str, str]], str | None]:
    rec = item.record
    if isinstance(rec, Explanation):
        return rec.title, list(sections(rec.body)), None
    if isinstance(rec, WorkedExample):
        steps = "\n".join(f"{n}. {s}" for n, s in enumerate(rec.steps, 1)) if len(rec.steps) > 1 else rec.steps[0]
        text = f"Problem: {rec.problem}\n\n{steps}" if rec.problem != rec.title else steps
        if rec.answer != "(see steps)":
            text += f"\n\nAnswer: {rec.answer}"
        return rec.title, [("Worked example", text)], None
    if isinstance(rec, CurriculumExercise):
        text = rec.prompt + ("\n\nHints:\n" + "\n".join(f"- {h}" for h in rec.hints) if rec.hints else "")
        return f"Exercise {rec.id}", [("Exercise", text)], rec.answer
    raise TypeError(f"not a document: {type(rec).__name__}")


def chunk_document(item: Located, curriculum: Curriculum, config: ChunkingConfig) -> list[Chunk]:
    """The chunks of one document, hashed, with unit metadata (grade, locale, standards) inherited."""
    rec = item.record
    unit = curriculum.unit_of(rec.skill)
    skill = curriculum.skills[rec.skill]
    standards = sorted({*unit.standards, *skill.standards, *rec.standards})
    title, parts, answer = _document_sections(item)
    chunks: list[Chunk] = []
    for section, text in parts:
        for window in split_text(text, config):
            chunks.append(Chunk(
                chunk_id=f"{rec.id}#{len(chunks)}", doc_id=rec.id, kind=rec.kind, title=title, section=section,
                text=window, skill=rec.skill, unit=unit.id, grade=unit.grade, locale=unit.locale,
                standards=standards, source=f"{item.source}:{item.line}", answer=answer,
            ).with_hash())
    return chunks


def chunk_curriculum(curriculum: Curriculum, config: ChunkingConfig) -> list[Chunk]:
    return [c for item in curriculum.documents for c in chunk_document(item, curriculum, config)]
