"""Shared helpers for the benchmarks: a bounded async HTTP load loop and percentile maths."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # Ray sets the root logger to INFO


def machine() -> str:
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def closed_loop(
    send: Callable[[httpx.AsyncClient], Awaitable[None]], *, requests: int, concurrency: int, timeout_s: float
) -> dict[str, float]:
    """Send exactly ``requests`` requests with ``concurrency`` workers (bounded in count and time)."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.monotonic() + timeout_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    await send(client)
                    latencies.append(time.perf_counter() - t0)
                except Exception:  # noqa: BLE001 - counted, reported
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "ok": len(latencies), "errors": errors, "wall_s": wall, "rps": len(latencies) / wall if wall else 0.0,
        "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def wrk_post(url: str, body: dict, headers: dict[str, str], *, connections: int, seconds: int,
             vary_learner: int = 0) -> dict[str, float]:
    """POST load with wrk (C, one thread: far cheaper than a Python client on 2 shared cores).
    With ``vary_learner`` N, each request's ``learner_id`` is drawn from N learners (as real traffic is).
    Bounded in time; returns req/s, p50/p99 ms and the count of non-2xx answers."""
    import json as _json
    import re
    import subprocess
    import tempfile

    lua = "wrk.method = 'POST'\nwrk.body = [[" + _json.dumps(body) + "]]\n"
    for k, v in {"Content-Type": "application/json", **headers}.items():
        lua += f"wrk.headers['{k}'] = '{v}'\n"
    if vary_learner:
        head, tail = _json.dumps({**body, "learner_id": "@@"}).split('"@@"')
        lua += (f"request = function()\n  local b = [[{head}]] .. '\"bench-' .. math.random({vary_learner}) .. "
                f"'\"' .. [[{tail}]]\n  return wrk.format(nil, nil, nil, b)\nend\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", fh.name, url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"), "p99_ms": ms("99%"),
        "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def synthetic_curriculum(folder: str, documents: int, *, seed: int = 0) -> None:
    """A curriculum folder of ``documents`` one-chunk explanations over the sample's units and skills
    (P4/P5): varied text so the embedder does real work, ~300 characters each."""
    import json
    import random
    import shutil
    from pathlib import Path

    root = Path(folder)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    repo = Path(__file__).resolve().parents[2]
    shutil.copy(repo / "tutor_cluster" / "defaults" / "curriculum" / "units.jsonl", root / "units.jsonl")
    skills = ["fractions.add", "fractions.simplify", "fracciones.sumar", "algebra.linear", "python.basics"]
    words = ("numerator denominator equivalent common multiple factor simplify equation balance inverse "
             "operation variable function loop list return value check estimate sum product divide").split()
    rng = random.Random(seed)
    with (root / "bulk.jsonl").open("w") as fh:
        for i in range(documents):
            body = " ".join(rng.choice(words) for _ in range(45)) + f". Note {i}."
            fh.write(json.dumps({"kind": "explanation", "id": f"bulk-{i}", "skill": skills[i % len(skills)],
                                 "title": f"Note {i} on {skills[i % len(skills)]}", "body": body}) + "\n")


def touch_documents(folder: str, every: int) -> int:
    """Change the text of every ``every``-th bulk document (a 1/every change); returns how many."""
    import json
    from pathlib import Path

    path = Path(folder) / "bulk.jsonl"
    lines = path.read_text().splitlines()
    changed = 0
    for n in range(0, len(lines), every):
        rec = json.loads(lines[n])
        rec["body"] += " Revised."
        lines[n] = json.dumps(rec)
        changed += 1
    path.write_text("\n".join(lines) + "\n")
    return changed
