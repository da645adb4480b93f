"""The edge's prompt-injection guard measured on labelled sets of attacks and benign look-alikes a learner might
write (en/es/fr/de/pt): ``injection.jsonl`` (225 messages, plain and embedded in a longer message) was written
together with the guard's patterns — an upper bound; ``injection_heldout.jsonl`` (52) was written after the
patterns were frozen and never used to tune them — what paraphrases the patterns have not seen look like.

    .venv/bin/python scripts/bench/injection_guard.py [--misses]

Prints precision and recall per language and overall (an "attack" flagged is a true positive). No model, no
service: the guard is the same function the edge tier calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tutor_cluster.edge.screening import looks_like_injection  # noqa: E402

DATA = Path(__file__).parent / "data"
SETS = {"development": DATA / "injection.jsonl", "held-out": DATA / "injection_heldout.jsonl"}


def measure(rows: list[dict]) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "n": 0})
    for row in rows:
        flagged = looks_like_injection(row["text"])
        for key in (row["lang"], "all"):
            c = counts[key]
            c["n"] += 1
            c["tp" if flagged and row["attack"] else "fp" if flagged else "fn" if row["attack"] else "tn"] += 1
    out = {}
    for key, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        out[key] = {"n": c["n"], "precision": round(precision, 3), "recall": round(recall, 3), **c}
    return out


def load(name: str = "development") -> list[dict]:
    return [json.loads(line) for line in SETS[name].read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--misses", action="store_true", help="list the rows the guard gets wrong")
    args = ap.parse_args()
    for name in SETS:
        rows = load(name)
        print(f"{dt.date.today()} injection guard, {name} set: {len(rows)} labelled messages "
              f"({sum(r['attack'] for r in rows)} attacks)")
        print(f"{'lang':6} {'n':>4} {'precision':>10} {'recall':>8}   tp  fp  fn  tn")
        for key, m in sorted(measure(rows).items(), key=lambda kv: (kv[0] == "all", kv[0])):
            print(f"{key:6} {m['n']:>4} {m['precision']:>10.3f} {m['recall']:>8.3f}  {m['tp']:>3} {m['fp']:>3} "
                  f"{m['fn']:>3} {m['tn']:>3}")
        if args.misses:
            for row in rows:
                if looks_like_injection(row["text"]) != row["attack"]:
                    print(("missed   " if row["attack"] else "false +  ") + f"[{row['lang']}] {row['text']}")
        print()


if __name__ == "__main__":
    main()
