"""Units as learners write them: the same unit in English, Spanish, abbreviated or as a symbol, singular or plural.

A unit written by the learner matches an exercise's declared unit when they are the same word (case, accents and a
plural 's'/'es' aside) or spellings of one unit in :data:`_SAME_UNIT` (``$`` = ``dollars`` = ``dólares`` = ``USD``;
``cm`` = ``centímetros`` = ``centimetres``).
"""

from __future__ import annotations

from collections.abc import Iterable

from tutor_cluster.edge.number_words import fold

#: Spellings of one unit, across the curriculum's languages (en, es). Compared after :func:`_forms`.
_SAME_UNIT: tuple[frozenset[str], ...] = tuple(frozenset(group) for group in (
    {"$", "dollar", "usd", "dolar", "buck"},
    {"€", "euro", "eur"},
    {"£", "pound", "gbp", "libra"},
    {"¢", "cent", "centavo", "centimo", "penny", "pence", "p"},
    {"mm", "millimetre", "millimeter", "milimetro"},
    {"cm", "centimetre", "centimeter", "centimetro"},
    {"m", "metre", "meter", "metro", "mts"},
    {"km", "kilometre", "kilometer", "kilometro"},
    {"g", "gram", "gramme", "gramo", "gr"},
    {"kg", "kilogram", "kilogramme", "kilogramo", "kilo"},
    {"l", "litre", "liter", "litro", "lt"},
    {"ml", "millilitre", "milliliter", "mililitro"},
    {"%", "percent", "per cent", "por ciento", "porciento"},
))
#: Currency words that may stand after a number ("12 dollars 50 cents").
CURRENCY_WORDS = frozenset({"dollar", "euro", "pound", "libra", "dolar", "buck"})
CENT_WORDS = frozenset({"cent", "centavo", "centimo", "penny", "pence", "p"})


def _forms(word: str) -> set[str]:
    """The word lower-cased without accents, and its singulars if it may be a plural ('s', 'es' off)."""
    w = fold(word.strip())
    forms = {w}
    if len(w) > 2 and w.endswith("s"):
        forms.add(w[:-1])
        if len(w) > 3 and w.endswith("es"):
            forms.add(w[:-2])
    return forms


def _spellings(word: str) -> set[str]:
    forms = _forms(word)
    return forms.union(*(group for group in _SAME_UNIT if group & forms))


def is_word_in(word: str, words: frozenset[str]) -> bool:
    """Is ``word`` (any case, accents, plural) one of ``words``?"""
    return bool(_forms(word) & words)


def unit_matches(unit: str, declared: Iterable[str]) -> bool:
    """Is the learner's ``unit`` one of the ``declared`` units, in any spelling?"""
    mine = _spellings(unit)
    return any(mine & _spellings(d) for d in declared)
