import pytest

from tutor_cluster.edge.code import CodeInputError, check_syntax


def test_syntax_error_reports_line_and_column() -> None:
    verdict = check_syntax("def add(a, b):\n    return a +\n")
    assert not verdict.ok
    assert verdict.line == 2
    assert verdict.column is not None and verdict.column > 0


def test_valid_code_lists_its_functions() -> None:
    verdict = check_syntax("import math\n\ndef add(a, b):\n    return a + b\n")
    assert verdict.ok and verdict.functions == ("add",)


def test_code_is_never_executed(tmp_path) -> None:
    marker = tmp_path / "ran"
    verdict = check_syntax(f"open({str(marker)!r}, 'w').write('x')\n")
    assert verdict.ok and not marker.exists()


@pytest.mark.parametrize("bad", ["print(1)\x00", "x" * 30_000])
def test_uncheckable_code_is_refused(bad: str) -> None:
    with pytest.raises(CodeInputError):
        check_syntax(bad)


def test_deep_nesting_is_a_syntax_verdict_not_a_crash() -> None:
    verdict = check_syntax("x = " + "(" * 5000 + "1" + ")" * 5000)
    assert not verdict.ok and "nested" in (verdict.message or "")
