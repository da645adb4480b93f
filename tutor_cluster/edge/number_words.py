"""Numbers written in words, in the curriculum's languages (English and Spanish).

``"nine"``, ``"twenty-one"``, ``"one hundred and five"``, ``"three quarters"``, ``"three and a half"``,
``"minus four"``, ``"nueve"``, ``"veintiuno"``, ``"ciento cinco"``, ``"tres cuartos"``, ``"dos y medio"``,
``"menos cuatro"``. Whole numbers below a million, simple fractions (halves to tenths) and "and a half".
A phrase with any word that is not a number word is not a number (``None``): "nine apples" is split into the
number and its unit before this is asked.
"""

from __future__ import annotations

import unicodedata
from fractions import Fraction

_UNITS = {
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    # Spanish (accents are stripped before lookup)
    "cero": 0, "uno": 1, "una": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15,
    "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiuno": 21,
    "veintiuna": 21, "veintiun": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25,
    "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30, "cuarenta": 40,
    "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80, "noventa": 90,
    "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300, "trescientas": 300,
    "cuatrocientos": 400, "cuatrocientas": 400, "quinientos": 500, "quinientas": 500, "seiscientos": 600,
    "seiscientas": 600, "setecientos": 700, "setecientas": 700, "ochocientos": 800, "ochocientas": 800,
    "novecientos": 900, "novecientas": 900,
}
_HUNDRED = {"hundred"}
_THOUSAND = {"thousand", "mil"}
_DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
    "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10,
    "medio": 2, "media": 2, "medios": 2, "tercio": 3, "tercios": 3, "cuarto": 4, "cuartos": 4, "quinto": 5,
    "quintos": 5, "sexto": 6, "sextos": 6, "septimo": 7, "septimos": 7, "octavo": 8, "octavos": 8, "noveno": 9,
    "novenos": 9, "decimo": 10, "decimos": 10, "mitad": 2, "hundredth": 100, "hundredths": 100,
    "centesimo": 100, "centesimos": 100, "centesima": 100, "centesimas": 100, "thousandth": 1000,
    "thousandths": 1000, "milesimo": 1000, "milesimos": 1000, "milesima": 1000, "milesimas": 1000,
}
_POINT = {"point", "coma", "punto"}
_AND = {"and", "y"}
_ARTICLE = {"a", "an"}
#: Words that make a denominator word mean "one of": "a half", "la mitad", "un tercio".
_ONE_OF = ([], ["a"], ["an"], ["one"], ["la"], ["una"], ["un"], ["el"])
_MINUS = {"minus", "negative", "menos"}
#: Words at most; a longer phrase is not a number a learner writes.
MAX_WORDS = 12


def fold(word: str) -> str:
    """Lower case without accents ("Veintitrés" → "veintitres"): how number words and units are compared."""
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def _whole(words: list[str]) -> int | None:
    """A whole number from its words, or None."""
    if not words:
        return None
    total, current, seen = 0, 0, False
    for i, w in enumerate(words):
        if w in _AND:
            continue
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _ARTICLE and words[i + 1:i + 2] and words[i + 1] in _HUNDRED | _THOUSAND:
            current += 1  # "a hundred", "a thousand"
        elif w in _HUNDRED:
            current = max(current, 1) * 100
        elif w in _THOUSAND:
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def parse(text: str) -> Fraction | None:
    """The value of a number written in words, or None when ``text`` is not one."""
    words = [fold(w) for w in text.replace("-", " ").split()]
    if not words or len(words) > MAX_WORDS:
        return None
    sign = 1
    if words[0] in _MINUS:
        sign, words = -1, words[1:]
    if not words:
        return None
    # "... and a half" / "... y medio": a whole number plus one half.
    if len(words) >= 3 and words[-3] in _AND and words[-2] in _ARTICLE | {"one"} and _DENOMINATORS.get(words[-1]) == 2:
        whole = _whole(words[:-3])
        return None if whole is None else sign * (whole + Fraction(1, 2))
    if len(words) >= 2 and words[-2] in _AND and words[-1] in {"medio", "media"}:
        whole = _whole(words[:-2])
        return None if whole is None else sign * (whole + Fraction(1, 2))
    # "three quarters", "a half", "dos tercios": numerator words, then a denominator word.
    if words[-1] in _DENOMINATORS:
        numerator = 1 if words[:-1] in _ONE_OF else _whole(words[:-1])
        return None if numerator is None else sign * Fraction(numerator, _DENOMINATORS[words[-1]])
    point = next((i for i, w in enumerate(words) if w in _POINT), None)
    if point is not None:  # "zero point seven five", "cero coma setenta y cinco"
        return _decimal(words[:point], words[point + 1:], sign)
    whole = _whole(words)
    return None if whole is None else sign * Fraction(whole)


def _decimal(before: list[str], after: list[str], sign: int) -> Fraction | None:
    whole = _whole(before)
    if whole is None or not after:
        return None
    zeros = 0
    while after[:1] in (["zero"], ["cero"]) and len(after) > 1:
        zeros, after = zeros + 1, after[1:]
    digits = [_UNITS.get(w) for w in after]
    if len(after) > 1 and all(d is not None and d < 10 for d in digits):
        figures = "".join(str(d) for d in digits)  # digit by digit: "seven five"
    else:
        value = _whole(after)  # as a number: "setenta y cinco"
        if value is None:
            return None
        figures = str(value)
    figures = "0" * zeros + figures
    return sign * (whole + Fraction(int(figures), 10 ** len(figures)))


def is_number_word(word: str) -> bool:
    """Is ``word`` one of the words numbers are written with (not counting 'and' / 'y')?"""
    w = fold(word)
    return w in _UNITS or w in _DENOMINATORS or w in _HUNDRED or w in _THOUSAND or w in _MINUS or w in _POINT
