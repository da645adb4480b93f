"""The answer corpus: learner answers of our own making, labelled, over the shipped exercises — how it is built,
and what the edge must do with each label (the oracle tests/unit/edge/test_corpus.py, tests/e2e and
scripts/bench/edge_answers.py share).

    python -m tests.data.answers.corpus     # rewrites corpus.jsonl next to this file (deterministic)

Each line: {"exercise_id", "message", "language" (or null: the exercise's), "label", "form"}. Labels:
``right`` (must be accepted: correct or correct-but-unsimplified), ``off_by_one`` and ``wrong`` (must be rejected),
``wrong_unit`` (a right number in another unit: unit feedback, not graded), ``help`` (a 200 turn with a hint),
``question`` (a 200 turn, not checked), ``hostile`` (refused with 422). ``form`` names how the answer is written.
"""

from __future__ import annotations

import json
from pathlib import Path

EN = ["{a}", "the answer is {a}", "I think it's {a}", "I think the answer is {a}.", "{a}!", "It's {a}",
      "my answer is {a}", "{a}?", "is it {a}?", "answer: {a}", "= {a}", "I got {a}", "{a} because I worked it out",
      "I'd say {a}", "maybe {a}", "ok so {a}", "that's {a}", "it should be {a}", "{a}, right?", "hmm, {a}"]
ES = ["{a}", "la respuesta es {a}", "creo que es {a}", "es {a}", "me da {a}", "son {a}", "el resultado es {a}",
      "{a} porque lo calculé", "sale {a}", "creo que son {a}", "respuesta: {a}", "pues {a}", "quizás {a}", "¿es {a}?"]

# exercise id → (language, right renderings by form, off-by-one renderings, other wrong, wrong-unit renderings)
EXERCISES: dict[str, dict] = {
    "word-apples-1": {"lang": "en", "right": {"integer": ["9", "09"], "unit": ["9 apples", "9 apple", "9apples"],
                                               "words": ["nine", "Nine", "nine apples"]},
                      "off": ["8", "10", "8 apples", "10 apples", "ten", "eight apples"], "wrong": ["1", "20", "45"],
                      "unit": ["9 kg", "9 pears", "9 cm"]},
    "word-money-1": {"lang": "en", "right": {"decimal": ["12.50", "12.5"], "currency": ["$12.50", "$12.5", "12.50$",
                                             "$ 12.50"], "unit": ["12.50 dollars", "12.5 dollars", "12.50 USD"],
                                             "decimal_comma": ["12,50"]},
                     "off": ["12.49", "$12.51", "$13.50", "11.50", "$11.5", "13.5 dollars"],
                     "wrong": ["7.25", "$2", "1250"], "unit": ["12.50 €", "12.50 euros", "12.50 pounds"]},
    "word-pupils-1": {"lang": "en", "right": {"integer": ["1000"], "thousands": ["1,000", "1 000"],
                                              "unit": ["1000 pupils", "1,000 pupils", "1000 students"],
                                              "words": ["one thousand", "a thousand", "one thousand pupils"]},
                      "off": ["999", "1001", "1,001", "999 pupils", "1,100"], "wrong": ["300", "100", "10,000"],
                      "unit": ["1000 schools", "1,000 teachers"]},
    "frac-add-1": {"lang": "en", "right": {"fraction": ["3/4", "3 / 4", "6/8"], "decimal": ["0.75", ".75"],
                                           "words": ["three quarters", "three fourths"], "percent": ["75%"],
                                           "decimal_comma": ["0,75"]},
                   "off": ["2/4", "4/4", "1/4", "0.74", "0.76", "74%"], "wrong": ["2/6", "1/3", "3/8"], "unit": []},
    "frac-add-2": {"lang": "en", "right": {"fraction": ["5/6", "10/12"], "words": ["five sixths"]},
                   "off": ["4/6", "6/6", "5/7"], "wrong": ["3/9", "1/2", "2/3"], "unit": []},
    "frac-mixed-1": {"lang": "en", "right": {"mixed_number": ["3 1/2", "3½", "3 and 1/2"], "fraction": ["7/2", "14/4"],
                                             "decimal": ["3.5"], "words": ["three and a half"]},
                     "off": ["2 1/2", "4 1/2", "3 1/4", "6/2", "8/2", "2.5"], "wrong": ["2 6/8", "11/4", "3"],
                     "unit": []},
    "frac-percent-1": {"lang": "en", "right": {"fraction": ["1/2", "10/20", "5/10"], "decimal": ["0.5"],
                                               "percent": ["50%", "50 percent"], "words": ["a half", "one half"]},
                       "off": ["2/2", "0.4", "0.6", "49%", "51%", "9/20"], "wrong": ["10", "20", "1/10"],
                       "unit": []},
    "percent-1": {"lang": "en", "right": {"percent": ["25%", "25 %", "25 percent", "twenty-five percent"],
                                          "integer": ["25"]},
                  "off": ["24%", "26%", "24", "26 percent"], "wrong": ["4%", "14%", "40%"], "unit": []},
    "length-cm-1": {"lang": "en", "right": {"unit": ["250 cm", "250cm", "250 centimetres", "250 centimeters"],
                                            "words": ["two hundred and fifty cm"]},
                    "off": ["249 cm", "251 cm", "251cm", "249 centimetres"], "wrong": ["25 cm", "2.5 cm", "2500 cm"],
                    "unit": ["250 m", "250 mm", "250 km"]},
    "round-pi-1": {"lang": "en", "right": {"decimal": ["3.14", "03.14"], "decimal_comma": ["3,14"]},
                   "off": ["3.13", "3.15", "3.24", "4.14"], "wrong": ["3.0", "22.7", "7.22"], "unit": []},
    "es-manzanas-1": {"lang": "es", "right": {"integer": ["9"], "unit": ["9 manzanas", "9 manzana"],
                                              "words": ["nueve", "nueve manzanas"]},
                      "off": ["8", "10", "diez", "8 manzanas", "ocho manzanas"], "wrong": ["3", "18", "36"],
                      "unit": ["9 peras", "9 kilos"]},
    "es-decimales-1": {"lang": "es", "right": {"decimal_comma": ["0,75", ",75"], "decimal": ["0.75"],
                                               "fraction": ["3/4"], "words": ["tres cuartos"]},
                       "off": ["0,74", "0,76", "0,85", "0,65"], "wrong": ["0,30", "0,525", "1,5"], "unit": []},
    "es-miles-1": {"lang": "es", "right": {"integer": ["2000"], "thousands": ["2.000", "2 000"],
                                           "unit": ["2.000 habitantes", "2000 personas"], "words": ["dos mil"]},
                   "off": ["1.999", "2.001", "1999 habitantes", "2001"], "wrong": ["1.280", "2.800", "20.000"],
                   "unit": ["2.000 casas"]},
    "lin-eq-1": {"lang": "en", "right": {"equation": ["x = 2", "x=2", "2 = x", "X = 2"], "integer": ["2"],
                                         "words": ["two"]},
                 "off": ["x = 1", "x = 3", "1", "3", "x=1"], "wrong": ["x = 5", "x = 8", "x = 10"], "unit": []},
    "lin-eq-2": {"lang": "en", "right": {"equation": ["y = 1", "y=1", "1 = y"], "integer": ["1"]},
                 "off": ["y = 0", "y = 2", "0", "2"], "wrong": ["y = 3", "y = -1", "y = 4"], "unit": []},
    "frac-simplify-1": {"lang": "en", "right": {"fraction": ["3/4", "3 / 4", "6/8", "9/12"]},
                        "off": ["2/4", "4/4", "3/5", "4/5"], "wrong": ["12/4", "1/4", "4/3"], "unit": []},
}
HELP = {
    "en": ["I don't get it", "I don't understand", "help", "help me please", "I'm stuck", "can I have a hint?",
           "hint please", "no idea", "idk", "this is too hard", "I give up", "where do I start?",
           "I'm confused", "what do I do?", "I hate fractions, this is so hard", "give me a clue"],
    "es": ["no entiendo", "no lo entiendo", "ayuda", "ayúdame por favor", "no sé", "una pista por favor",
           "me rindo", "estoy perdido", "es muy difícil", "qué hago?", "¿puedes explicarlo otra vez?"],
}
QUESTIONS = {
    "en": ["why do we add the tops?", "what does simplest form mean?", "how do I change metres to centimetres?",
           "can you explain it another way?", "what is a denominator?", "why is that the answer?"],
    "es": ["¿por qué se suman?", "¿qué significa decimal?", "¿cómo se hace?", "¿para qué sirven los decimales?"],
}
HOSTILE = ["(a+b+c+d+e+f+g+h)^64", "((x+1)^64)^64", "(((x+1)^64)^64)^64", "((x*10^6)^64)^64", "9**9**9**9",
           "2^1000000", "(2^64)^64", "(x+1)^64*(x+2)^64", "(a+b+c)^40/(a-b)^30", "1+" * 300 + "1",
           "(" * 40 + "1" + ")" * 40, "9" * 500, "10**99999", "(999999^64)^64"]


CORPUS = Path(__file__).with_name("corpus.jsonl")
#: Written independently (by a helper that never saw the reader, after the reader was written) and never used to
#: tune it: what answers the reader was not written against look like.
HELD_OUT = Path(__file__).with_name("heldout.jsonl")
#: A second one, written the same way after the reader had been improved on the first's misses: the first is no
#: longer held out; this one is.
HELD_OUT_2 = Path(__file__).with_name("heldout2.jsonl")
SETS = {"corpus": CORPUS, "heldout": HELD_OUT, "heldout2": HELD_OUT_2}
LABELS = ("right", "off_by_one", "wrong", "wrong_unit", "help", "question", "hostile")


def load(path: Path = CORPUS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def meets(label: str, status: int, outcome: str | None, intent: str | None, tier: str | None = None) -> bool:
    """Did the edge do what ``label`` asks? ``status``: 200 or the HTTP status; ``outcome``: the check's outcome
    (None: not checked); ``tier``: where the turn was answered (None: not known, in-process)."""
    if label == "hostile":
        return status == 422
    if status != 200:
        return False
    if label == "right":
        return outcome in ("correct", "unsimplified")
    if label in ("off_by_one", "wrong"):
        return outcome in ("incorrect", "unsolved")
    if label == "wrong_unit":
        return outcome == "wrong_unit"
    if label == "help":
        return intent == "hint_request" and outcome is None and tier in (None, "edge")
    return intent in ("question", "off_topic") and outcome is None  # question


def build() -> list[dict]:
    rows: list[dict] = []
    for ex_id, spec in EXERCISES.items():
        lang = spec["lang"]
        templates = ES if lang == "es" else EN
        for form, renderings in spec["right"].items():
            for a in renderings:
                for t in templates:
                    rows.append({"exercise_id": ex_id, "message": t.format(a=a), "language": lang, "label": "right",
                                 "form": form if t == "{a}" else f"{form} in a sentence"})
        for label in ("off", "wrong"):
            for a in spec[label]:
                for t in templates[:6]:
                    rows.append({"exercise_id": ex_id, "message": t.format(a=a), "language": lang,
                                 "label": "off_by_one" if label == "off" else "wrong", "form": "any"})
        for a in spec["unit"]:
            for t in templates[:3]:
                rows.append({"exercise_id": ex_id, "message": t.format(a=a), "language": lang,
                             "label": "wrong_unit", "form": "unit"})
        for m in HELP[lang]:
            rows.append({"exercise_id": ex_id, "message": m, "language": lang, "label": "help", "form": "help"})
        for m in QUESTIONS[lang]:
            rows.append({"exercise_id": ex_id, "message": m, "language": lang, "label": "question", "form": "question"})
    for i, bomb in enumerate(HOSTILE):
        rows.append({"exercise_id": list(EXERCISES)[i % len(EXERCISES)], "message": bomb, "language": None,
                     "label": "hostile", "form": "hostile"})
    return rows


if __name__ == "__main__":
    out = CORPUS
    rows = build()
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} answers → {out}")
