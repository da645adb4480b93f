"""Curriculum format: the sample loads; every kind of bad input is one line naming file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tutor_cluster.config.settings import SAMPLE_CURRICULUM
from tutor_cluster.knowledge.curriculum import CurriculumError, load_curriculum

SAMPLE = SAMPLE_CURRICULUM


def test_sample_curriculum_loads() -> None:
    c = load_curriculum(SAMPLE)
    assert {"fractions.add", "fractions.simplify", "algebra.linear", "python.basics"} <= set(c.skills)
    kinds = {d.record.kind for d in c.documents}
    assert kinds == {"explanation", "worked_example", "exercise"}
    assert c.unit_of("fractions.add").grade == 5 and c.unit_of("fracciones.sumar").locale == "es"


def test_sample_skills_match_the_edge_exercise_set() -> None:
    """Retrieval filters by the skill the edge tier detects: the ids must be the same vocabulary."""
    from tutor_cluster.config.settings import load_settings

    edge_skills = {s.id for s in load_settings().exercises.skills}
    assert edge_skills <= set(load_curriculum(SAMPLE).skills)


UNITS = '{"kind": "unit", "id": "u", "title": "U", "grade": 5}\n{"kind": "skill", "id": "s", "unit": "u", "title": "S"}\n'


@pytest.mark.parametrize("files, expected", [
    ({"a.jsonl": UNITS + '{"kind": "explanation", "id": "e", "skill": "s", "title": "T", "body": "x"\n'},
     "a.jsonl:3: not valid JSON"),
    ({"a.jsonl": UNITS + '{"kind": "explanation", "id": "e", "skill": "s", "title": "T"}\n'},
     "a.jsonl:3: body: Field required"),
    ({"a.jsonl": UNITS + '{"kind": "explanation", "id": "e", "skill": "nope", "title": "T", "body": "x"}\n'},
     "a.jsonl:3: skill: unknown skill 'nope'"),
    ({"a.jsonl": UNITS + '{"kind": "lesson", "id": "e"}\n'}, "a.jsonl:3: kind: unknown kind"),
    ({"a.jsonl": UNITS + '{"id": "e"}\n'}, "a.jsonl:3: kind: missing"),
    ({"a.jsonl": UNITS + '{"kind": "exercise", "id": "e", "skill": "s", "prompt": "p", "answer": "a", "colour": 1}\n'},
     "a.jsonl:3: colour: unknown field"),
    ({"a.jsonl": UNITS + '{"kind": "skill", "id": "s", "unit": "u", "title": "again"}\n'},
     "a.jsonl:3: id: duplicate skill id 's' (first at a.jsonl:2)"),
    ({"a.jsonl": '{"kind": "unit", "id": "u", "title": "U", "grade": 99}\n'}, "a.jsonl:1: grade: Input should be less"),
    ({"a.jsonl": UNITS, "b.md": "no front matter\n"}, "b.md:1: expected YAML front matter"),
    ({"a.jsonl": UNITS, "b.md": "---\nid: b\nskill: s\ntitle: T\ncolour: red\n---\ntext\n"},
     "b.md:5: colour: unknown field"),
    ({"a.jsonl": UNITS, "b.md": "---\nid: b\nskill: gone\ntitle: T\n---\ntext\n"}, "b.md:6: skill: unknown skill 'gone'"),
    ({"a.jsonl": UNITS, "b.md": "---\nid: b\nskill: s\ntitle: T\n---\n\n"}, "b.md:6: body: the document has no text"),
    ({"a.jsonl": b"\xff\xfe"}, "a.jsonl: not UTF-8"),
    ({}, "no curriculum records"),
])
def test_bad_curriculum_names_file_line_and_field(tmp_path: Path, files: dict, expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CurriculumError) as info:
        load_curriculum(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(expected) or expected in message, message


def test_nested_folders_and_readme_are_handled(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "c")
    (tmp_path / "c" / "deep").mkdir()
    (tmp_path / "c" / "deep" / "more.md").write_text("---\nid: more\nskill: fractions.add\ntitle: More\n---\n# H\nbody\n")
    c = load_curriculum(tmp_path / "c")
    assert any(d.source == "deep/more.md" for d in c.documents)
    assert not any(d.source == "README.md" for d in c.documents)
