"""The edge's answer understanding on the answer corpus (tests/data/answers/corpus.jsonl, ~3,000 answers of our
own making over the shipped exercises): accept / reject / refuse rates per label and per form, and the edge's
check time (p50, p99) with the symbolic work in worker processes (the service's path) and inline.

    .venv/bin/python scripts/bench/edge_answers.py [--misses]

No model, no service: the same ``analyse`` the edge replica runs. Rates are what tests/unit/edge/test_corpus.py
asserts floors on; times are this machine's, for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pct  # noqa: E402

from tests.data.answers import corpus  # noqa: E402
from tutor_cluster.config.edge import EdgeConfig  # noqa: E402
from tutor_cluster.config.settings import load_settings  # noqa: E402
from tutor_cluster.edge.analysis import EdgeInputError, analyse  # noqa: E402
from tutor_cluster.edge.checker import Checker, InlineChecker, ProcessChecker  # noqa: E402


def evaluate(rows: list[dict], checker: Checker) -> list[dict]:
    """Each row with what the edge did: status (200/422/503), outcome, intent, ok (per the oracle), seconds."""
    exercises = load_settings().exercises
    out = []
    for row in rows:
        t0 = time.perf_counter()
        try:
            result = analyse(row["message"], row["exercise_id"], exercises, EdgeConfig(), language=row["language"],
                             checker=checker)
            status, intent = 200, result.signals.intent
            outcome = result.signals.check.outcome if result.signals.check else None
        except EdgeInputError as exc:
            status, intent, outcome = (503 if exc.busy else 422), None, None
        seconds = time.perf_counter() - t0
        ok = corpus.meets(row["label"], status, outcome, intent)
        out.append({**row, "status": status, "outcome": outcome, "intent": intent, "ok": ok, "s": seconds})
    return out


def rates(results: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (label, form) and per (label, "all"): n, share handled as the label asks, accepted, refused (422)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["label"], r["form"])].append(r)
        groups[(r["label"], "all")].append(r)
    out = {}
    for key, rs in sorted(groups.items()):
        n = len(rs)
        out[key] = {"n": n, "ok": sum(r["ok"] for r in rs) / n,
                    "accepted": sum(r["outcome"] in ("correct", "unsimplified") for r in rs) / n,
                    "refused": sum(r["status"] == 422 for r in rs) / n,
                    "errors_5xx": sum(r["status"] >= 500 for r in rs)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="print every answer not handled as labelled")
    parser.add_argument("--set", choices=sorted(corpus.SETS), default="corpus", help="which labelled set")
    args = parser.parse_args()
    rows = corpus.load(corpus.SETS[args.set])
    workers = ProcessChecker(workers=2)
    workers.wait_ready()
    try:
        timed = {"process": evaluate(rows, workers), "inline": evaluate(rows, InlineChecker())}
    finally:
        workers.close()
    results = timed["process"]
    print(f"# {dt.date.today()} · {machine()} · {len(rows)} answers")
    print(f"{'label':12} {'form':28} {'n':>5} {'as labelled':>12} {'accepted':>9} {'refused':>8} {'5xx':>4}")
    for (label, form), r in rates(results).items():
        print(f"{label:12} {form:28} {r['n']:5d} {r['ok']:12.1%} {r['accepted']:9.1%} {r['refused']:8.1%} "
              f"{r['errors_5xx']:4d}")
    for path, rs in timed.items():
        checked = [r["s"] * 1000 for r in rs if r["outcome"] is not None or r["status"] != 200]
        print(f"edge check time ({path}): p50 {statistics.median(checked):.2f} ms, "
              f"p99 {pct(checked, 99):.2f} ms, max {max(checked):.2f} ms over {len(checked)} checks")
    hostile = [r["s"] * 1000 for r in results if r["label"] == "hostile"]
    if hostile:
        print(f"hostile inputs (the listed bombs and over-limit shapes): all refused in at most {max(hostile):.2f} ms "
              f"each (p50 {statistics.median(hostile):.2f} ms)")
    if args.misses:
        for r in results:
            if not r["ok"]:
                print(f"MISS {r['label']:10} {r['exercise_id']:16} {r['message']!r} → {r['status']} {r['outcome']}")


if __name__ == "__main__":
    main()
