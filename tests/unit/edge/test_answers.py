"""Reading answers as learners write them (edge/answers.py, edge/number_words.py): every form the edge accepts,
what is not an answer, linear time on hostile shapes, and fuzzing for crashes."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor_cluster.edge import number_words
from tutor_cluster.edge.answers import read


@pytest.mark.parametrize(("text", "kwargs", "expression", "form", "unit", "notes"), [
    ("9", {}, "9", "integer", None, ()),
    ("9 apples", {}, "9", "integer", "apples", ()),
    ("9kg", {}, "9", "integer", "kg", ()),
    ("nine apples", {}, "9", "words", "apples", ()),
    ("$12.50", {}, "12.50", "decimal", "$", ("currency",)),
    ("12.50€", {}, "12.50", "decimal", "€", ("currency",)),
    ("-$5", {}, "-5", "integer", "$", ("currency",)),
    ("1,000", {}, "1000", "integer", None, ("thousands separator",)),
    ("12,345.5", {}, "12345.5", "decimal", None, ("thousands separator",)),
    ("1 000", {}, "1000", "integer", None, ("thousands separator",)),
    ("1.000", {"language": "es"}, "1000", "integer", None, ("thousands separator",)),
    ("12.345,5", {"language": "es"}, "12345.5", "decimal", None, ("thousands separator",)),
    ("1.000", {}, "1.000", "decimal", None, ()),
    ("0,75", {}, "0.75", "decimal", None, ("decimal comma",)),
    ("0,75", {"language": "es"}, "0.75", "decimal", None, ("decimal comma",)),
    ("50%", {}, "(50)/100", "percent", None, ()),
    ("50 percent", {}, "(50)/100", "percent", None, ()),
    ("50 por ciento", {"language": "es"}, "(50)/100", "percent", None, ()),
    ("50%", {"units": ["%"]}, "50", "integer", "%", ()),
    ("3 1/2", {}, "(3 + 1/2)", "mixed_number", None, ()),
    ("3 and 1/2", {}, "(3 + 1/2)", "mixed_number", None, ()),
    ("3½", {}, "(3 + 1/2)", "mixed_number", None, ()),
    ("−4", {}, "-4", "integer", None, ()),
    ("nine", {}, "9", "words", None, ()),
    ("three quarters", {}, "3/4", "words", None, ()),
    ("tres cuartos", {"language": "es"}, "3/4", "words", None, ()),
    ("the answer is 9", {}, "9", "integer", None, ("sentence",)),
    ("I think it's 3/4", {}, "3/4", "fraction", None, ("sentence",)),
    ("I think the answer is 9 apples.", {}, "9", "integer", "apples", ("sentence",)),
    ("Is it 9?", {}, "9", "integer", None, ("sentence",)),
    ("x = 5 because I took 2 from both sides", {}, "x = 5", "equation", None, ("sentence",)),
    ("x=1,000", {}, "x = 1000", "equation", None, ("thousands separator",)),
    ("la respuesta es 0,75", {"language": "es"}, "0.75", "decimal", None, ("sentence", "decimal comma")),
    ("creo que son 12 manzanas", {"language": "es"}, "12", "integer", "manzanas", ("sentence",)),
    ("She has 9 apples now.", {}, "9", "integer", "apples", ("sentence",)),
    ("Luis tiene nueve manzanas", {"language": "es"}, "9", "words", "manzanas", ("sentence",)),
    ("there are 1,000 pupils in all", {}, "1000", "integer", "pupils", ("sentence", "thousands separator")),
    ("2x = 4 so x = 2", {"equation": True}, "x = 2", "equation", None, ("sentence",)),
    ("1/4 = 25%", {}, "(25)/100", "percent", None, ("sentence",)),
    ("2.5 x 100 = 250 cm", {}, "250", "integer", "cm", ("sentence",)),
    ("the answer is 10/12 which is 5/6", {}, "10/12", "fraction", None, ("sentence",)),
    ("1+1=2 and 3/4+3/4=6/4 which is 1 1/2 so 3 1/2", {}, "(3 + 1/2)", "mixed_number", None, ("sentence",)),
    ("x is 2", {"equation": True}, "2", "integer", None, ("sentence",)),
    ("x = two", {"equation": True}, "x = 2", "equation", None, ()),
    ("3 and a half", {}, "(3 + 1/2)", "mixed_number", None, ()),
    ("twelve dollars and fifty cents", {}, "(12 + 50/100)", "decimal", "dollars", ("currency",)),
    ("12 euros con 50 céntimos", {"language": "es"}, "(12 + 50/100)", "decimal", "euros", ("currency",)),
    ("cero coma setenta y cinco", {"language": "es"}, "3/4", "words", None, ()),
    ("0'75", {"language": "es"}, "0.75", "decimal", None, ("decimal comma",)),
    ("5/6 :)", {}, "5/6", "fraction", None, ("sentence",)),
    ("9 🍎", {}, "9", "integer", None, ()),
    ("la mitad", {"language": "es"}, "1/2", "words", None, ("sentence",)),
    ("2x + 1", {"symbolic": True}, "2x + 1", "expression", None, ()),
    ("1/2 + 1/4", {}, "1/2 + 1/4", "expression", None, ()),
])
def test_answers_are_read_in_every_form(text, kwargs, expression, form, unit, notes) -> None:
    r = read(text, **kwargs)
    assert r is not None, text
    assert (r.expression, r.form, r.unit, r.notes) == (expression, form, unit, notes)


@pytest.mark.parametrize(("text", "simplest"), [("3/4", True), ("6/8", False), ("4/1", False), ("3 1/2", True),
                                                ("3 3/2", False), ("2 2/4", False), ("1/2 + 1/4", False),
                                                ("2x + 1", True), ("0.75", True), ("x = 6/3", False)])
def test_simplest_form_is_judged_from_what_was_written(text, simplest) -> None:
    assert read(text, symbolic=True).simplest is simplest


@pytest.mark.parametrize("text", ["I don't get it", "why do we need a common denominator?", "hello", "ok",
                                  "I have no idea", "no lo sé", "", "   ", "¿?", "apples", "9 apples and 3 pears"])
def test_text_without_an_answer_reads_as_none(text) -> None:
    assert read(text) is None


@pytest.mark.parametrize("text", ["it is 3/4 [name]", "[name]: 3/4", "3/4 [email] [phone]"])
def test_redaction_placeholders_are_not_part_of_the_answer(text) -> None:
    """The gateway replaces a learner's own name before the edge reads the answer: what is left still reads."""
    reading = read(text)
    assert reading is not None and reading.expression == "3/4"


def test_a_letter_after_a_number_is_a_variable_where_the_answer_has_variables() -> None:
    assert read("2x", symbolic=True).expression == "2x"
    assert read("2x", symbolic=False).unit == "x"
    assert read("5 m", symbolic=True, units=["m"]).unit == "m"


@pytest.mark.parametrize(("words", "value"), [
    ("zero", 0), ("twenty-one", 21), ("one hundred and five", 105), ("two thousand five hundred", 2500),
    ("a half", 0.5), ("two thirds", 2 / 3), ("three and a half", 3.5), ("minus four", -4), ("veintitrés", 23),
    ("ciento cinco", 105), ("mil doscientos", 1200), ("dos y medio", 2.5), ("menos cuatro", -4), ("un medio", 0.5),
])
def test_number_words(words, value) -> None:
    assert float(number_words.parse(words)) == pytest.approx(value)


@pytest.mark.parametrize("words", ["a", "and", "nine apples", "the", "hundred hundred hundred" * 5])
def test_not_number_words(words) -> None:
    assert number_words.parse(words) is None


@pytest.mark.parametrize("shape", [lambda n: "9 " * (n // 2), lambda n: "a" * n, lambda n: "1," * (n // 2),
                                   lambda n: "the answer is " * (n // 14), lambda n: "1/" * (n // 2),
                                   lambda n: "i think " * (n // 8) + "9", lambda n: "9" + " because" * (n // 8),
                                   lambda n: "1 " * (n // 2) + "apples", lambda n: "$" * n + "5",
                                   lambda n: "so 1 " * (n // 5), lambda n: "1/4 = " * (n // 6) + "9",
                                   lambda n: "ana has " * (n // 8) + "9", lambda n: "9" + " now" * (n // 4),
                                   lambda n: "is " * (n // 3) + "9?", lambda n: "9 (" * (n // 3) + "a"])
def test_reading_runs_in_linear_time_on_hostile_shapes(shape) -> None:
    """4× the input: ~4× the work when linear, ~16× when quadratic. Best of 5 per size (a busy machine does not
    decide the outcome)."""
    def best(text: str) -> float:
        out = []
        for _ in range(5):
            t0 = time.perf_counter()
            read(text)
            read(text, language="es", symbolic=True)
            out.append(time.perf_counter() - t0)
        return min(out)

    small, large = best(shape(4000)), best(shape(16000))
    assert large / max(small, 1e-6) < 9, (small, large)


_PIECES = st.sampled_from(["9", "1", "0", ",", ".", "/", " ", "-", "+", "%", "$", "€", "x", "=", "(", ")", "^",
                           "apples", "nine", "half", "y", "and", "the answer is", "I think", "because", "½", "es"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=14).map("".join)))
def test_reading_never_crashes(text) -> None:
    """Any text reads as an answer or as None, in both languages; never an exception."""
    for language in ("en", "es"):
        r = read(text, language=language, units=["apples", "%"])
        assert r is None or r.expression.strip()
