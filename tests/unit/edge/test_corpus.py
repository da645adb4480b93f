"""The answer corpus (tests/data/answers/corpus.jsonl, ~3,000 labelled answers of our own making) through the
edge's analysis — the floors issue 13 set: ≥ 99 % of right answers accepted, every off-by-one and wrong answer
rejected, every help request a 200 turn answered with a hint, every hostile input refused (422), nothing else
refused. scripts/bench/edge_answers.py prints the per-form table (docs/benchmarks.md)."""

import importlib.util

import pytest

from tests import REPO_ROOT
from tests.data.answers import corpus
from tutor_cluster.edge.checker import InlineChecker


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("edge_answers", REPO_ROOT / "scripts/bench/edge_answers.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    rows = corpus.load()
    assert len(rows) >= 1000 and {r["language"] for r in rows} >= {"en", "es"}
    assert set(corpus.LABELS) == {r["label"] for r in rows}
    return bench.rates(bench.evaluate(rows, InlineChecker())), bench


def test_right_answers_are_accepted_in_every_form(results) -> None:
    rates, _ = results
    assert rates[("right", "all")]["ok"] >= 0.99
    for (label, form), r in rates.items():
        if label == "right":
            assert r["ok"] >= 0.95, (form, r)  # no form is left behind by the average


@pytest.mark.parametrize("label", ["off_by_one", "wrong", "wrong_unit", "help", "question", "hostile"])
def test_every_other_label_is_handled_as_labelled(results, label) -> None:
    rates, _ = results
    assert rates[(label, "all")]["ok"] == 1.0, rates[(label, "all")]


def test_only_hostile_input_is_refused_and_nothing_is_a_server_error(results) -> None:
    rates, _ = results
    for (label, form), r in rates.items():
        assert r["errors_5xx"] == 0
        if label != "hostile":
            assert r["refused"] == 0, (label, form)


@pytest.mark.parametrize("name", ["heldout", "heldout2"])
def test_the_held_out_sets(results, name) -> None:
    """Sets written independently of the reader (docs/benchmarks.md has their figures, before and after the
    reader was improved on the first one). Floors under what was measured; and on any set, whatever it is: no
    wrong answer is ever accepted, nothing is refused, nothing is a server error."""
    _, bench = results
    rows = corpus.load(corpus.SETS[name])
    assert len(rows) >= 300
    rates = bench.rates(bench.evaluate(rows, InlineChecker()))
    assert rates[("right", "all")]["ok"] >= 0.9
    for label in ("off_by_one", "wrong", "wrong_unit"):
        assert rates[(label, "all")]["accepted"] == 0 and rates[(label, "all")]["ok"] >= 0.95, label
    for (label, form), r in rates.items():
        assert r["refused"] == 0 and r["errors_5xx"] == 0, (label, form)
