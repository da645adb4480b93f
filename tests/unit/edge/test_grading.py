"""Checking attempts against the shipped exercises (edge/grading.py through edge/analysis.py): every outcome the
feedback teaches from, intent before checking, and fuzzing the whole edge for crashes and unbounded work."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor_cluster.config.edge import EdgeConfig, Exercise
from tutor_cluster.config.settings import load_settings
from tutor_cluster.edge.analysis import EdgeInputError, analyse
from tutor_cluster.edge.checker import CheckRefused, ProcessChecker
from tutor_cluster.edge.grading import WHAT_TO_TYPE, with_hint


@pytest.fixture(scope="module")
def exercises():
    return load_settings().exercises


@pytest.mark.parametrize(("message", "exercise_id", "language", "outcome", "reply_starts"), [
    ("9 apples", "word-apples-1", None, "correct", "Correct!"),
    ("I think the answer is 9.", "word-apples-1", None, "correct", "Correct!"),
    ("nine", "word-apples-1", None, "correct", "Correct!"),
    ("9 kg", "word-apples-1", None, "wrong_unit", "Nearly!"),
    ("10 apples", "word-apples-1", None, "incorrect", "Not quite."),
    ("$12.50", "word-money-1", None, "correct", "Correct!"),
    ("12.5 dollars", "word-money-1", None, "correct", "Correct!"),
    ("$12.05", "word-money-1", None, "incorrect", "Not quite."),
    ("1,000", "word-pupils-1", None, "correct", "Correct!"),
    ("1,001", "word-pupils-1", None, "incorrect", "Not quite."),
    ("50%", "frac-percent-1", None, "correct", "Correct!"),
    ("25%", "percent-1", None, "correct", "Correct!"),
    ("3 1/2", "frac-mixed-1", None, "correct", "Correct!"),
    ("14/4", "frac-mixed-1", None, "unsimplified", "Correct — can you simplify it?"),
    ("6/8", "frac-simplify-1", None, "unsimplified", "Correct — can you simplify it?"),
    ("0.75", "frac-simplify-1", None, "wrong_form", "Nearly!"),
    ("250", "length-cm-1", None, "missing_unit", "Nearly!"),
    ("250 cm", "length-cm-1", None, "correct", "Correct!"),
    ("3.14", "round-pi-1", None, "correct", "Correct!"),
    ("3.15", "round-pi-1", None, "incorrect", "Not quite."),
    ("3.143", "round-pi-1", None, "wrong_form", "Nearly!"),  # right value, not rounded to 2 places
    ("3.142857", "round-pi-1", None, "wrong_form", "Nearly!"),
    ("3.1", "round-pi-1", None, "incorrect", "Not quite."),  # outside the tolerance
    ("nueve manzanas", "es-manzanas-1", "es", "correct", "Correct!"),
    ("la respuesta es 0,75", "es-decimales-1", "es", "correct", "Correct!"),
    ("2.000", "es-miles-1", "es", "correct", "Correct!"),
    ("2.000", "es-miles-1", None, "correct", "Correct!"),  # the exercise's language when the turn gives none
    ("3 ++ )", "frac-add-1", None, "unreadable", "I couldn't read"),
    ("cuestan 12,50 dólares", "word-money-1", "es", "correct", "Correct!"),  # a unit in another language
    ("250 centímetros", "length-cm-1", "es", "correct", "Correct!"),
    ("3 and a half", "frac-mixed-1", None, "correct", "Correct!"),  # never "3" with the unit "and a half"
    ("12.50 euros", "word-money-1", None, "wrong_unit", "Nearly!"),
])
def test_outcomes_and_the_feedback_that_teaches(exercises, message, exercise_id, language, outcome,
                                                reply_starts) -> None:
    result = analyse(message, exercise_id, exercises, EdgeConfig(), language=language)
    check = result.signals.check
    assert check is not None and check.outcome == outcome, check
    assert result.reply is not None and result.reply.text.startswith(reply_starts), result.reply
    assert check.correct is {"correct": True, "unsimplified": True, "incorrect": False}.get(outcome)


def test_the_response_says_which_form_was_recognised(exercises) -> None:
    check = analyse("I think it's 3 1/2", "frac-mixed-1", exercises, EdgeConfig()).signals.check
    assert check.recognised == "mixed number, sentence" and check.answer == "(3 + 1/2)"
    assert "read as mixed number" in check.detail


@pytest.mark.parametrize(("message", "exercise_id", "intent"), [
    ("I don't get it", "word-apples-1", "hint_request"),
    ("no entiendo nada", "es-manzanas-1", "hint_request"),
    ("this is too hard, I give up", "frac-add-1", "hint_request"),
    ("idk", "frac-add-1", "hint_request"),
    ("why do I need the same denominator?", "frac-add-1", "question"),
    ("nine", "word-apples-1", "answer_attempt"),
    ("is it 9?", "word-apples-1", "answer_attempt"),
    ("did you see the football game", "word-apples-1", "off_topic"),
    ("is a quarter the same as 1/4?", "frac-add-1", "question"),  # holds a number, asks a question
    ("is it 3/4?", "frac-add-1", "answer_attempt"),
    ("is 3/4 right?", "frac-add-1", "answer_attempt"),
    ('def add(a, b):\n    print("help")\n', "py-func-1", "answer_attempt"),
])
def test_intent_is_decided_before_checking(exercises, message, exercise_id, intent) -> None:
    result = analyse(message, exercise_id, exercises, EdgeConfig())
    assert result.signals.intent == intent
    if intent != "answer_attempt":
        assert result.signals.check is None  # never checked (nor refused) as a malformed answer


def test_help_on_an_exercise_with_hints_is_answered_at_the_edge_with_the_next_hint(exercises) -> None:
    reply = analyse("I'm stuck", "lin-eq-1", exercises, EdgeConfig()).reply
    assert reply is not None and reply.hint_from == "lin-eq-1"
    assert "Subtract 3" in with_hint(reply, exercises.get("lin-eq-1"), 1)
    bare = Exercise(id="bare", skill="fractions.add", kind="math", prompt="1/2 + 1/4?", answer="3/4")
    without_hints = type(exercises)(skills=exercises.skills, exercises=[bare])
    assert analyse("I'm stuck", "bare", without_hints, EdgeConfig()).reply is None  # → a model answers


def test_over_limit_input_is_refused_with_what_to_type(exercises) -> None:
    with pytest.raises(EdgeInputError) as exc:
        analyse("((x+1)^64)^64", "frac-add-1", exercises, EdgeConfig())
    assert exc.value.field == "message" and WHAT_TO_TYPE in exc.value.message and not exc.value.busy


def test_maths_fields_are_validated() -> None:
    with pytest.raises(ValueError, match="apply to maths exercises only"):
        Exercise(id="p", skill="s", kind="python", prompt="p", answer="x = 1", units=["cm"])
    with pytest.raises(ValueError, match="unit_required needs"):
        Exercise(id="m", skill="s", kind="math", prompt="p", answer="1", unit_required=True)
    with pytest.raises(ValueError, match="check_wall_s"):
        EdgeConfig(call_timeout_s=5, check_wall_s=6)


def _expr(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.integers(-10**6, 10**6).map(str), st.sampled_from(list("abcdefghxy")),
                     st.decimals(places=3, allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000)
                     .map(str))
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(sub, st.integers(-70, 70)).map(lambda t: f"({t[0]})^{t[1]}"),
    )


_ANSWERS = st.one_of(_expr(4), st.tuples(_expr(3), _expr(3)).map(lambda t: f"{t[0]} = {t[1]}"),
                     st.text(max_size=80))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_ANSWERS, st.sampled_from(["frac-add-1", "lin-eq-1", "word-money-1", "frac-mixed-1", "round-pi-1"]))
def test_the_edge_never_crashes(answer, exercise_id) -> None:
    """Whatever is typed: a result or a 422 naming the field, never another exception."""
    exercises = load_settings().exercises
    try:
        analyse(answer, exercise_id, exercises, EdgeConfig())
    except EdgeInputError as exc:
        assert exc.field == "message" and exc.message


@pytest.fixture(scope="module")
def workers():
    checker = ProcessChecker(workers=2, cpu_s=2, wall_s=20)  # a long wall bound: only CPU refusals count here
    checker.wait_ready()
    yield checker
    checker.close()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          deadline=None)
@given(_expr(4))
def test_what_the_size_estimate_lets_through_checks_within_the_cpu_budget(workers, answer) -> None:
    """Unbounded work would show as a check killed by its worker's CPU limit: an input the estimate should have
    refused. None may be."""
    exercises = load_settings().exercises
    try:
        analyse(answer, "frac-add-1", exercises, EdgeConfig(), checker=workers)
    except EdgeInputError as exc:
        assert not isinstance(exc.__cause__, CheckRefused), (answer, exc.message)
