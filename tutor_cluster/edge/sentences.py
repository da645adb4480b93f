"""Taking a learner's final answer out of what they wrote around it (en, es).

"I think it's 3/4" → "3/4"; "x = 5 because I took 3 away" → "x = 5"; "2x = 4 so x = 2" → "x = 2";
"1/4 = 25%" → "25%"; "She has 9 apples now." → "9 apples"; "the answer is 10/12 which is 5/6" → "10/12";
"la respuesta es 0,75" → "0,75". A message that opens with a question word ("why is it 9?") is left as it is:
a question is not an answer.

Every step is a pattern anchored at one end, a plain alternation of literals, or a token loop — linear in the
length of the text (tests/unit/edge/test_answers.py measures it over growing hostile inputs).
"""

from __future__ import annotations

import re

_OUTER = " \t\"'“”«»¿¡.!?;:,"
# Phrases that lead into an answer; stripped, up to a few times ("ok so I think it's about 9"). Never a single
# letter: "y = 1" keeps its variable.
_LEAD_INS = sorted([
    "i think", "i believe", "i guess", "i reckon", "i got", "i get", "i'd say", "i would say", "i have", "i found",
    "my answer is", "my answer", "the answer is", "the answer's", "answer is", "answer", "the result is", "result",
    "the total is", "total", "it's", "it is", "its", "is it", "that's", "that is", "it must be", "it should be",
    "should be", "would be", "maybe", "perhaps", "probably", "so", "ok", "okay", "well", "um", "umm", "hmm", "er",
    "equals", "there are", "there is", "it makes", "makes", "it comes to", "comes to", "that makes", "then", "and",
    "about", "around", "roughly", "approximately", "approx", "exactly", "just", "only", "a total of", "in total",
    "the", "yes", "yeah", "right", "oh",
    "creo que es", "creo que son", "creo que", "pienso que", "la respuesta es", "respuesta", "el resultado es",
    "resultado", "el total es", "es", "son", "me da", "me sale", "da", "sale", "quizás", "quizas", "quizá",
    "tal vez", "pues", "vale", "eh", "bueno", "sería", "seria", "serían", "debe ser", "hay", "tiene", "entonces",
    "más o menos", "mas o menos", "aproximadamente", "aprox", "unos", "unas", "cerca de", "en total", "el", "la",
    "los", "las", "un total de", "sí", "si", "o sea",
], key=len, reverse=True)
_LEAD_IN = re.compile(r"^(?:" + "|".join(re.escape(p) for p in _LEAD_INS) + r")(?![^\W_])(?:[\s:=]|,(?!\d))*", re.I)
# "Ana has 9 apples", "they cost $12.50", "x is 2", "Luis tiene nueve manzanas", "mide 250 cm": a short subject,
# then a verb, then the answer.
_SUBJECT_VERB = re.compile(
    r"^(?:[^\W\d_]+\s+){0,3}?(?:has|have|had|is|are|was|were|costs?|comes? to|makes?|equals?|gets?|got|weighs?|"
    r"measures?|tiene|tienen|ten[ií]a|mide|miden|cuesta|cuestan|vale|valen|es|son|da|dan|hay|queda|quedan|sale|"
    r"salen|pesa|pesan|suma|suman)\s+", re.I)
_QUESTION_START = re.compile(r"^\W*(?:why|what|whats|how|which|when|who|where|could|can|should|do|does|"
                             r"qu[eé]|c[oó]mo|por\s*qu[eé]|cu[aá]l|cu[aá]nt[oa]s?|d[oó]nde|puedes|me\s+puedes)\b",
                             re.I)
# Explanations after the answer ("… because …", "… which is …", "… (tres cuartos)"): cut at the first.
_EXPLAIN = re.compile(r"[\s,;]+(?:because|becuase|becuse|becase|bcause|cuz|since|cause|cos|coz|bc|as|right|no|i think|i guess|i believe|maybe|"
                      r"porque|ya que|pues|creo|verdad|which is|that is|es decir|o sea|i hope|i'm not sure|"
                      r"not sure|no estoy segur[oa])(?![^\W_])|\s+\((?=[^\W\d_])", re.I)
# Working before the answer ("2x = 4 so x = 2", "… entonces 9", "2.5 x 100 → 250"): the answer follows the last.
_CONNECTOR = re.compile(r"(?:^|[\s,;])(?:so|therefore|thus|hence|which means|entonces|por lo tanto|as[ií] que|"
                        r"luego|then)\s+|\s*(?:->|→|=>)\s*", re.I)
# Words after the answer that add nothing ("9 apples now", "1000 in all", "250 cm long").
_FILLER = frozenset({"now", "altogether", "together", "total", "long", "left", "ahora", "redondeado", "rounded",
                     "exactly", "exactamente", "aprox", "approx", "approximately", "aproximadamente", "all", "in",
                     "en", "de", "largo", "in all", "en total", "in total", "then", "ok", "lol", "yay", "ya",
                     "total", "each", "easy", "ez", "done", "yes", ":)", ":(", ":d", ";)", ":p", ":-)", "xd"})


def trim(text: str) -> str:
    """Outer spaces and punctuation off, except a leading '.' or ',' that starts a number (".75", ",75")."""
    text = text.rstrip(_OUTER)
    i = 0
    while i < len(text) and text[i] in _OUTER and not (text[i] in ".," and text[i + 1:i + 2].isdigit()):
        i += 1
    return text[i:]


def is_question(text: str) -> bool:
    return bool(_QUESTION_START.match(text))


def _after_last_connector(text: str) -> str:
    """The text after the last connector that still has a digit after it."""
    last_digit = next((i for i in range(len(text) - 1, -1, -1) if text[i].isdigit()), -1)
    last = None
    for m in _CONNECTOR.finditer(text):
        if m.end() <= last_digit:
            last = m
    return text[last.end():] if last is not None else text


def _last_side(text: str, equation: bool) -> str:
    """A chain of working ("1/4 = 25%", "2.5 x 100 = 250 cm"): its last side — unless the exercise's answer is an
    equation, whose '=' belongs to the answer."""
    if equation or "=" not in text:
        return text
    before, last = text.rsplit("=", 1)
    side = before.rsplit("=", 1)[-1].strip()
    if len(side) == 1 and side.isalpha():
        return text  # "x = 5": an equation as the answer, not working
    return last if last.strip() else text


def _without_filler(text: str) -> str:
    words = text.split(" ")
    while len(words) > 1:
        two = " ".join(words[-2:]).lower()
        if two in _FILLER and len(words) > 2:
            words = words[:-2]
        elif words[-1].lower() in _FILLER or words[-1].lower().strip(_OUTER) in _FILLER:
            words = words[:-1]
        else:
            break
    return " ".join(words)


def final_answer(text: str, *, equation: bool = False) -> str:
    """The final answer in ``text`` (already normalised: single spaces, no outer punctuation); ``text`` itself when
    it holds nothing to take away. ``equation``: the exercise's answer is an equation (keep its '=')."""
    if is_question(text):
        return text
    text = _after_last_connector(text)  # "… which is 1 1/2 so 3 1/2": the working ends at the last connector
    cut = _EXPLAIN.search(text)
    if cut and cut.start() > 0:
        text = text[:cut.start()]
    text = trim(_last_side(text, equation))
    for _ in range(6):
        stripped = trim(_LEAD_IN.sub("", text, count=1)).lstrip("= ")
        if stripped == text:
            stripped = trim(_SUBJECT_VERB.sub("", text, count=1))
        if stripped == text or not stripped:
            break
        text = stripped
    return trim(_without_filler(text))
