"""Run the drills and regenerate the measured figures in docs/reliability.md.

The drills are the suite's fault-injection tests (marked ``drill``: learner-memory actors and ``redis-server``
killed under load, a re-embedding job killed half-way, an edge node lost under load, the edge autoscaling). Those
that measure figures report them; this command runs them (bounded: pytest's per-test timeout, loopback only, as in the
suite) and writes those lines, with the date and the machine, between the markers of docs/reliability.md. The
page is left as it was when a drill fails.

    python scripts/drills/run.py                    # all drills (~8 min on 2 cores)
    python scripts/drills/run.py -k multinode       # extra arguments go to pytest (the block then holds
                                                    # only the selected drills' figures)
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- drills:begin (scripts/drills/run.py writes this block) -->", "<!-- drills:end -->"
#: Where the suite's ``drill_report`` fixture also writes each line (JSON per line: test id, line).
REPORT_ENV = "TUTOR_DRILL_REPORT"
TIMEOUT_S = 900


def render(records: list[dict[str, str]], date: str, where: str) -> str:
    """The block: one bullet per measured line, under the test that measured it."""
    lines = [BEGIN, f"Latest run: {date}, {where}.", ""]
    by_test: dict[str, list[str]] = {}
    for record in records:
        by_test.setdefault(record["test"], []).append(record["line"])
    for test, measured in by_test.items():
        lines.append(f"- `{test}`")
        lines.extend(f"  - {line}" for line in measured)
    return "\n".join([*lines, END])


def replace_block(doc: str, block: str) -> str:
    """``doc`` with the text between the markers (included) replaced by ``block``."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOC.name} has no drills block: add the lines {BEGIN!r} and {END!r}")
    return doc[:start] + block + doc[end + len(END):]


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "drills.jsonl"
        env = {**os.environ, REPORT_ENV: str(report), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--timeout={TIMEOUT_S}", "-m", "drill",
               "tests/service", *argv]
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if rc != 0:
            print(f"drills: pytest exit {rc}; {DOC.relative_to(ROOT)} left as it was", file=sys.stderr)
            return rc
        records = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    if not records:
        print("drills: no drill reported a figure (nothing selected?)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "scripts" / "bench"))  # here, not at import: tests import this module
    from _common import machine

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    DOC.write_text(replace_block(DOC.read_text(), render(records, date, machine())))
    print(f"drills: {len(records)} figures written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
