"""Reading a learner's answer as learners write it, before any checking.

``"9 apples"``, ``"$12.50"``, ``"1,000"``, ``"50%"``, ``"3 1/2"``, ``"nine"``, ``"I think it's 3/4"``,
``"x = 5 because…"``, ``"la respuesta es 0,75"``: the final answer is taken out of the sentence, its unit, currency
and percent sign are recorded and stripped, separators are read by the learner's language (``1,000`` is a thousand
in English; ``0,75`` is three quarters in either language; ``1.000`` is a thousand in Spanish), mixed numbers and
number words (en, es) become exact values. What comes out is one maths expression for :mod:`tutor_cluster.edge.maths`
plus what was recognised, so the feedback can say it. Text that holds no answer (a question, a help request) reads
as ``None``.

Every pattern here is anchored or a plain alternation of literals with no nested quantifiers, so reading is linear
in the input's length (``tests/unit/edge/test_answers.py`` measures it over growing hostile inputs).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from tutor_cluster.config.edge import AnswerFormName as AnswerForm
from tutor_cluster.edge import number_words, sentences
from tutor_cluster.edge.screening import PLACEHOLDER
from tutor_cluster.edge.units import CENT_WORDS, CURRENCY_WORDS, is_word_in, unit_matches

_TRANSLATE = str.maketrans({"−": "-", "–": "-", "—": "-", "×": "*", "·": "*", "÷": "/", "⁄": "/", "＝": "=",
                            "’": "'", "‘": "'", "\u00a0": " ", "\u202f": " "})
_VULGAR = {"½": " 1/2", "⅓": " 1/3", "⅔": " 2/3", "¼": " 1/4", "¾": " 3/4", "⅕": " 1/5", "⅖": " 2/5",
           "⅗": " 3/5", "⅘": " 4/5", "⅙": " 1/6", "⅚": " 5/6", "⅛": " 1/8", "⅜": " 3/8", "⅝": " 5/8", "⅞": " 7/8"}
_SPACES = re.compile(r"\s+")
_DROPPED = frozenset({"So", "Cf", "Cs", "Co", "Mn"})
#: Longer texts with words in them are not an answer on their own (a question, a paragraph): read as None.
MAX_ANSWER_TEXT = 400
_CURRENCY = "$€£"
_PERCENT_WORDS = re.compile(r"\s*(?:percent|per cent|por ciento|porciento)$", re.I)
# Numbers, read whole (fullmatch).
_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")
_LEADING_ZEROS = re.compile(r"^([+-]?)0+(?=\d)")
_FRACTION = re.compile(r"([+-]?)(\d+)\s*/\s*(\d+)")
_MIXED = re.compile(r"([+-]?)(\d+)\s+(?:(?:and|y)\s+)?(\d+)\s*/\s*(\d+)", re.I)
_AND_A_HALF = re.compile(r"([+-]?)(\d+)\s+(?:and a half|and one half|y medio|y media)", re.I)
_GROUPED_COMMA = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")  # 1,000 and 12,345.5 (en)
_GROUPED_DOT = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?")  # 1.000 and 12.345,5 (es)
_GROUPED_SPACE = re.compile(r"[+-]?[1-9]\d{0,2}(?: \d{3})+(?:[.,]\d+)?")  # 1 000 (either)
_DECIMAL_COMMA = re.compile(r"[+-]?\d*[,']\d+")  # 0,75 — and 0'75, as many learners in Spain write it
_ATTACHED_UNIT = re.compile(r"([+-]?[\d.,]*\d)([^\W\d_]+)")  # 9kg, 12cm
_WORD = re.compile(r"[^\W\d_]+")
_MATHS_ONLY = re.compile(r"[0-9a-zA-Z\s+\-*/^().=,]*")
#: Two-letter words that make a text prose rather than maths ("xy" is maths; "is it" is not).
_SHORT_WORDS = {"is", "it", "no", "ok", "so", "do", "me", "my", "to", "of", "in", "on", "an", "am", "be", "or",
                "if", "la", "el", "es", "de", "lo", "se", "un", "mi", "tu", "yo", "si", "ya", "al", "he", "we"}


@dataclass(frozen=True)
class Reading:
    """An answer as read: one maths expression and what was recognised on the way."""

    expression: str
    form: AnswerForm
    unit: str | None = None
    notes: tuple[str, ...] = field(default=())
    #: False for a fraction not in lowest terms (6/8), an improper mixed number, or arithmetic left undone (1/2+1/4).
    simplest: bool = True

    def describe(self) -> str:
        """What was recognised, for the learner: "mixed number 3 1/2, unit 'apples'"."""
        parts = [self.form.replace("_", " ")]
        if self.unit:
            parts.append(f"unit '{self.unit}'")
        parts.extend(self.notes)
        return ", ".join(parts)


def _normalise(text: str) -> str:
    text = PLACEHOLDER.sub(" ", unicodedata.normalize("NFC", text))  # redacted personal data is not the answer
    for glyph, plain in _VULGAR.items():
        text = text.replace(glyph, plain)
    text = "".join(c for c in text if unicodedata.category(c) not in _DROPPED)  # emoji, joiners, selectors
    return sentences.trim(_SPACES.sub(" ", text.translate(_TRANSLATE)))


def is_prose(text: str) -> bool:
    """Words, not maths: a run of three letters or more, or a common two-letter word."""
    return any(len(w) >= 3 or w.lower() in _SHORT_WORDS for w in _WORD.findall(text))


def _lowest(n: int, d: int) -> bool:
    return d > 1 and math.gcd(n, d) == 1


def _number(text: str, language: str) -> tuple[str, AnswerForm, tuple[str, ...], bool] | None:
    """One number written whole: (expression, form, notes, simplest), or None."""
    if m := _MIXED.fullmatch(text):
        sign, whole, n, d = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        if d == 0:
            return None
        return f"{sign}({whole} + {n}/{d})", "mixed_number", (), n < d and _lowest(n, d)
    if m := _AND_A_HALF.fullmatch(text):
        return f"{m.group(1)}({int(m.group(2))} + 1/2)", "mixed_number", (), True
    if m := _FRACTION.fullmatch(text):
        n, d = int(m.group(2)), int(m.group(3))
        return f"{m.group(1)}{n}/{d}", "fraction", (), _lowest(n, d)
    spanish = language.lower().startswith("es")
    if spanish and _GROUPED_DOT.fullmatch(text):
        return text.replace(".", "").replace(",", "."), "decimal" if "," in text else "integer", ("thousands separator",), True
    if _PLAIN.fullmatch(text):  # "09" and "007.5" are numbers to a learner (and a SyntaxError to Python)
        return _LEADING_ZEROS.sub(r"\1", text), "decimal" if "." in text else "integer", (), True
    if not spanish and _GROUPED_COMMA.fullmatch(text):
        return text.replace(",", ""), "decimal" if "." in text else "integer", ("thousands separator",), True
    if _DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".").replace("'", "."), "decimal", ("decimal comma",), True
    if _GROUPED_SPACE.fullmatch(text):
        value = text.replace(" ", "").replace(",", ".")
        return value, "decimal" if "." in value else "integer", ("thousands separator",), True
    value = number_words.parse(text)
    if value is not None:
        expr = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
        return expr, "words", (), True
    return None


def _split_unit(text: str, language: str, units: Sequence[str], symbolic: bool,
                ) -> tuple[tuple[str, AnswerForm, tuple[str, ...], bool], str] | None:
    """A number followed by a unit ("9 apples", "nine apples", "9kg", "2.5 m"): (number, unit), or None."""
    declared = {u.lower() for u in units}
    tokens = text.split(" ")
    candidates = [(" ".join(tokens[:-k]), " ".join(tokens[-k:])) for k in (1, 2, 3) if len(tokens) > k]
    if m := _ATTACHED_UNIT.fullmatch(text):
        candidates.append((m.group(1), m.group(2)))
    for head, tail in candidates:
        if not _WORD.fullmatch(tail.replace(" ", "")) or any(number_words.is_number_word(w) for w in tail.split()):
            continue  # "3 and a half": number words are not a unit
        if symbolic and not unit_matches(tail, declared):
            continue  # "2x": a variable, not a unit, where the answer has variables
        number = _number(head, language)
        if number is not None:
            return number, tail
    return None


def _money(text: str, language: str) -> tuple[tuple[str, AnswerForm, tuple[str, ...], bool], str] | None:
    """"12 dollars 50 cents", "twelve dollars and fifty cents", "12 euros con 50 céntimos": (number, unit)."""
    tokens = text.split(" ")
    if not 3 <= len(tokens) <= 12 or not is_word_in(tokens[-1], CENT_WORDS):
        return None
    at = next((i for i, t in enumerate(tokens) if is_word_in(t, CURRENCY_WORDS)), None)
    if not at:
        return None
    rest = [t for t in tokens[at + 1:-1] if t.lower() not in ("and", "y", "con")]
    whole, cents = _number(" ".join(tokens[:at]), language), _number(" ".join(rest), language)
    if whole is None or cents is None or "." in whole[0] or "/" in whole[0] or "." in cents[0] or "/" in cents[0]:
        return None
    return (f"({whole[0]} + {cents[0]}/100)", "decimal", ("currency",), True), tokens[at]


def read(text: str, *, language: str = "en", units: Sequence[str] = (), symbolic: bool = False,
         equation: bool = False) -> Reading | None:
    """The answer in ``text``, or None when it holds none. ``units``: the exercise's accepted units (``"%"`` among
    them means a percentage is a value in percent, not a fraction); ``symbolic``: the answer has variables, so a
    letter after a number is a variable unless it is a declared unit; ``equation``: the answer is an equation."""
    s = _normalise(text)
    if not s or (len(s) > MAX_ANSWER_TEXT and is_prose(s)):
        return None
    body = sentences.final_answer(s, equation=equation)
    if not body:
        return None
    notes: list[str] = ["sentence"] if body != s else []
    unit: str | None = None
    sign = ""
    if len(body) > 1 and body[0] in "+-" and body[1] in _CURRENCY:
        sign, body = body[0], body[1:]
    if body[0] in _CURRENCY or body[-1] in _CURRENCY:  # ("" in "$€£" is True: index, never slice, here)
        unit = body[0] if body[0] in _CURRENCY else body[-1]
        body = body.strip(_CURRENCY + " ")
        notes.append("currency")
    body = sign + body
    if not body:
        return None
    percent = False
    if body.endswith("%") or _PERCENT_WORDS.search(body):
        percent = True
        body = _PERCENT_WORDS.sub("", body).rstrip("% ")
    number = _number(body, language)
    if number is None and unit is None and not percent:
        split = _money(body, language) or _split_unit(body, language, units, symbolic)
        if split is not None:
            number, unit = split
    if number is not None:
        expr, form, extra, simplest = number
        notes.extend(extra)
        if percent:
            if "%" in units:
                unit = "%"
            else:
                expr, form = f"({expr})/100", "percent"
        return Reading(expr, form, unit, tuple(notes), simplest)
    if unit is not None or percent:
        return None
    if body.count("=") == 1:  # "x = 2", "x = 1,000", "x = two"
        left, right = (p.strip() for p in body.split("="))
        for var, value in ((left, right), (right, left)):
            number = _number(value, language) if len(var) == 1 and var.isalpha() else None
            if number is not None:
                return Reading(f"{var} = {number[0]}", "equation", None, tuple(notes) + number[2], number[3])
    if is_prose(body) or not _MATHS_ONLY.fullmatch(body):
        return None
    return _maths(body, tuple(notes))


def _maths(body: str, notes: tuple[str, ...]) -> Reading:
    """An expression or equation as typed ("1/2 + 1/4", "2x + 1 = 5")."""
    if "=" in body:
        return Reading(body, "equation", None, notes, True)
    numeric = not any(c.isalpha() for c in body)
    return Reading(body, "expression", None, notes, not numeric)
