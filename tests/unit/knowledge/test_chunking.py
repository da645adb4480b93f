"""Heading-aware chunking with overlap, and content hashes."""

from __future__ import annotations

from tutor_cluster.config.knowledge import ChunkingConfig
from tutor_cluster.config.settings import SAMPLE_CURRICULUM
from tutor_cluster.knowledge.chunking import chunk_curriculum, sections, split_text
from tutor_cluster.knowledge.curriculum import load_curriculum

SAMPLE = SAMPLE_CURRICULUM


def test_sections_follow_the_heading_path_and_ignore_code_fences() -> None:
    body = "intro\n# A\na text\n## B\nb text\n```\n# not a heading\n```\n# C\nc text\n"
    got = list(sections(body))
    assert [p for p, _ in got] == ["", "A", "A › B", "C"]
    assert "# not a heading" in got[2][1]


def test_windows_respect_the_limit_and_overlap() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(20))
    cfg = ChunkingConfig(max_chars=400, overlap_chars=80)
    windows = split_text(text, cfg)
    assert len(windows) > 5
    assert all(len(w) <= 400 + 80 + 3 for w in windows)
    for prev, cur in zip(windows, windows[1:]):  # each window starts with the tail of the previous one
        head = cur.split(" … ", 1)[0]
        assert head and head in prev
    assert split_text("short", cfg) == ["short"]


def test_hashes_are_stable_and_track_the_text() -> None:
    cfg = ChunkingConfig()
    a = chunk_curriculum(load_curriculum(SAMPLE), cfg)
    b = chunk_curriculum(load_curriculum(SAMPLE), cfg)
    assert [c.hash for c in a] == [c.hash for c in b] and len({c.chunk_id for c in a}) == len(a)
    changed = a[0].model_copy(update={"text": a[0].text + " more"}).with_hash()
    assert changed.hash != a[0].hash
    moved = a[0].model_copy(update={"source": "elsewhere.md:9"}).with_hash()
    assert moved.hash == a[0].hash and moved.meta_hash != a[0].meta_hash  # new payload, same vector


def test_exercise_answers_are_never_embedded_text() -> None:
    chunks = chunk_curriculum(load_curriculum(SAMPLE), ChunkingConfig())
    exercises = [c for c in chunks if c.kind == "exercise"]
    assert exercises
    for c in exercises:
        assert c.answer and c.answer not in c.embed_text().replace(c.title, "")
    units = {c.unit for c in chunks}
    assert "fractions" in units and all(c.standards for c in chunks if c.unit == "fractions")
