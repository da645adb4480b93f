"""P6: cost per interaction on the reference workload mix (docs/benchmarks.md) with cost-aware routing vs always
calling the core model, at equal correctness of feedback; and the routing decision's own overhead.

    .venv/bin/python scripts/bench/p6_routing_cost.py [--policy rules|cascade] [--sessions 2] [--concurrency 6]

One local service (the bundled model behind both catalogue tiers, priced as in configs/models.yaml). Ours: every
turn of the mix as a learner sends it (`POST /v1/tutor/turns`, with `exercise_id` for answers). Always-core: the
same turns pinned to `tutor-core` through `/v1/chat/completions` without `exercise_id`, so no edge check
and no routing happen — every turn is a core call. Correctness of feedback is measured where ground truth exists
(answer submissions: the verdict must match the label); the always-core side is credited with 100 %.
Then: `RouterCore.decide` over 20,000 requests per policy, and one budget reservation, in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pct  # noqa: E402

#: (kind, exercise_id, message, expected verdict) — one practice session of the reference mix.
SESSION = [
    ("answer", "frac-add-1", "2/6", False), ("answer", "frac-add-1", "3/4", True),
    ("answer", "frac-add-2", "3/9", False), ("answer", "frac-add-2", "10/12", True),
    ("answer", "frac-simplify-1", "5/8", False), ("answer", "frac-simplify-1", "3/4", True),
    ("answer", "lin-eq-1", "x = 5", False), ("answer", "lin-eq-1", "x = 2", True),
    ("answer", "lin-eq-2", "y = 2", False), ("answer", "frac-add-1", "0.75", True),
    ("hint", "frac-add-1", "I'm stuck, can I have a hint?", None),
    ("hint", "lin-eq-1", "what do I do first?", None),
    ("hint", "frac-simplify-1", "hint please", None),
    ("hint", "frac-add-2", "I am stuck on this one, any hint?", None),
    ("question", None, "What is a denominator?", None),
    ("question", None, "Why do I need a common denominator to add fractions?", None),
    ("question", None, "How do I check my answer to an equation?", None),
    ("question", None, "What does simplest form mean?", None),
    ("hard", None, "Why does dividing by a fraction make a number bigger? Explain the intuition, prove it in "
                   "general, compare it with dividing by whole numbers and justify every step.", None),
    ("hard", None, "Prove that the sum of two fractions with the same denominator keeps that denominator, "
                   "explain why adding denominators is wrong, and give a general rule with justification.", None),
]


def decision_overhead() -> list[str]:
    from tutor_cluster.config.routing import BudgetConfig, RoutingConfig
    from tutor_cluster.config.settings import load_settings
    from tutor_cluster.edge.signals import EdgeSignals
    from tutor_cluster.routing.budgets import BudgetLedger, Subject
    from tutor_cluster.routing.decisions import LearnerFeatures
    from tutor_cluster.routing.learned import fit
    from tutor_cluster.routing.router import CoreRequest, RouterCore

    settings = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="p6-"))
    model = tmp / "learned.json"
    rows = [({"complexity": i / 100, "intent": "question", "misconceptions": i % 3}, i < 60) for i in range(100)]
    fit(rows, 0.3).save(model)
    requests = [CoreRequest(request_id=str(i), messages=[{"role": "user", "content": "q"}],
                            signals=EdgeSignals(intent="question", skill="fractions.add", complexity=(i % 97) / 97,
                                                text="q"),
                            learner=LearnerFeatures(mastery=(i % 10) / 10, attempts=i % 5, misconceptions=i % 3))
                for i in range(20_000)]
    lines = []
    for policy in ("rules", "cascade", "learned"):
        cfg = RoutingConfig(policy=policy, learned={"model_path": str(model)})
        router = RouterCore(cfg, settings.catalogue, {})
        times = []
        for req in requests:
            t = time.perf_counter()
            router.decide(req)
            times.append((time.perf_counter() - t) * 1000)
        lines.append(f"| decide `{policy}` | {pct(times, 50) * 1000:.0f} µs | **{pct(times, 99) * 1000:.0f} µs** |")
    ledger = BudgetLedger(BudgetConfig(sqlite_path=str(tmp / "b.db"), rules=[{"scope": "tenant", "limit": 1e9}]))
    times = []
    for i in range(2000):
        t = time.perf_counter()
        ledger.settle(ledger.reserve(Subject(tenant="t"), 0.001), 0.0005)
        times.append((time.perf_counter() - t) * 1000)
    lines.append(f"| budget reserve + settle (SQLite, fsync) | {pct(times, 50) * 1000:.0f} µs | "
                 f"{pct(times, 99) * 1000:.0f} µs |")
    return lines


async def run_mix(base: str, key: str, sessions: int, concurrency: int) -> tuple[dict, dict]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    sem = asyncio.Semaphore(concurrency)
    ours = {"cost": 0.0, "turns": 0, "tiers": {}, "graded": 0, "right": 0}
    core = {"cost": 0.0, "turns": 0}

    async def one(client: httpx.AsyncClient, s: int, i: int, kind: str, ex: str | None, msg: str,
                  expected: bool | None) -> None:
        async with sem:
            body = {"learner_id": f"p6-{s}", "session_id": f"s{s}", "message": msg,
                    "mode": "explain" if kind in ("question", "hard") else "practice", "turn_id": f"p6-{s}-{i}"}
            if ex:
                body["exercise_id"] = ex
            r = await client.post(f"{base}/v1/tutor/turns", json=body, headers=headers)
            r.raise_for_status()
            b = r.json()
            ours["cost"] += b["cost"]["amount"]
            ours["turns"] += 1
            ours["tiers"][b["tier"]] = ours["tiers"].get(b["tier"], 0) + 1
            if expected is not None:
                ours["graded"] += 1
                ours["right"] += int(b["check"] is not None and b["check"]["correct"] is expected)
            prompt = f"Exercise {ex}: {msg}" if ex else msg
            r = await client.post(f"{base}/v1/chat/completions", headers=headers, json={
                "model": "tutor-core", "messages": [{"role": "user", "content": prompt}]})
            r.raise_for_status()
            core["cost"] += r.json()["tutor"]["cost"]
            core["turns"] += 1

    async with httpx.AsyncClient(timeout=600) as client:
        await asyncio.gather(*(one(client, s, i, *turn) for s in range(sessions) for i, turn in enumerate(SESSION)))
    return ours, core


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="rules", choices=["rules", "cascade"])
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--port", type=int, default=8731)
    args = ap.parse_args()

    overhead = decision_overhead()

    from tutor_cluster import runtime
    from tutor_cluster.app.local import start_ray

    runtime.apply_ray_env()
    from ray import serve

    from tutor_cluster.api.auth import hash_key, new_key
    from tutor_cluster.app.builder import build_app
    from tutor_cluster.config.auth import ApiKey, AuthConfig
    from tutor_cluster.config.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="p6-"))
    key = new_key()
    env = {**os.environ, "TUTOR__LEARNER__STORE__SQLITE_PATH": str(tmp / "learners.db"),
           "TUTOR__ROUTING__POLICY": args.policy, "TUTOR__ROUTING__BUDGETS__SQLITE_PATH": str(tmp / "budgets.db"),
           "TUTOR__KNOWLEDGE__STORE__PATH": str(tmp / "qdrant")}
    settings = load_settings(env=env)
    settings = settings.model_copy(update={"auth": AuthConfig(api_keys=[ApiKey(id="bench", sha256=hash_key(key))])})
    start_ray(settings)
    from tutor_cluster.app.local import ensure_curriculum

    ensure_curriculum(settings)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_app(settings), name="tutor", route_prefix="/")
    t0 = time.perf_counter()
    ours, core = asyncio.run(run_mix(f"http://127.0.0.1:{args.port}", key, args.sessions, args.concurrency))
    seconds = time.perf_counter() - t0
    per_ours, per_core = ours["cost"] / ours["turns"], core["cost"] / core["turns"]
    print(f"mix: {ours['turns']} turns per side in {seconds:.0f} s; ours by tier {ours['tiers']}")
    print(f"feedback correctness on graded answers: ours {ours['right']}/{ours['graded']}, always-core credited 100 %")
    print()
    print(f"| {machine()} | `{args.policy}` | {ours['turns']} | {per_ours:.6f} | {per_core:.6f} | "
          f"**{per_ours / per_core:.3f}×** | {ours['right']}/{ours['graded']} |")
    print()
    print("| step | p50 | p99 |\n|---|---|---|")
    print("\n".join(overhead))
    serve.shutdown()


if __name__ == "__main__":
    main()
