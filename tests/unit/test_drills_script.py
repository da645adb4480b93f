"""scripts/drills/run.py: the block it writes into docs/reliability.md, and the page's markers."""

from __future__ import annotations

import importlib.util

import pytest

from tests import REPO_ROOT

_spec = importlib.util.spec_from_file_location("drills_run", REPO_ROOT / "scripts" / "drills" / "run.py")
drills = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drills)


def test_the_block_lists_each_drills_figures_under_its_test_and_replaces_only_itself() -> None:
    records = [{"test": "a.py::t1", "line": "5 crashes, 0 lost"}, {"test": "b.py::t2", "line": "2 of 1009 failed"},
               {"test": "a.py::t1", "line": "recovery p50 2.1 s"}]
    block = drills.render(records, "2026-12-02 07:00 UTC", "2 cores, AMD EPYC")
    assert block.startswith(drills.BEGIN) and block.endswith(drills.END)
    assert "2026-12-02 07:00 UTC, 2 cores, AMD EPYC" in block
    assert block.index("`a.py::t1`") < block.index("5 crashes") < block.index("recovery p50") < block.index("`b.py")
    doc = f"# Title\n\nbefore\n\n{drills.BEGIN}\nold figures\n{drills.END}\n\nafter\n"
    new = drills.replace_block(doc, block)
    assert new == f"# Title\n\nbefore\n\n{block}\n\nafter\n" and "old figures" not in new
    assert drills.replace_block(new, block) == new  # idempotent


def test_a_page_without_the_markers_is_refused_and_the_shipped_page_has_them() -> None:
    with pytest.raises(ValueError, match="no drills block"):
        drills.replace_block("# no markers here\n", drills.render([], "d", "m"))
    doc = drills.DOC.read_text()
    assert doc.count(drills.BEGIN) == 1 and doc.count(drills.END) == 1
