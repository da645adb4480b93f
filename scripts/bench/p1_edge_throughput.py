"""P1: edge-settled turns/s through the gateway vs a bare two-deployment Serve chain, same run, same
concurrency. Target: ratio >= 0.6.

    .venv/bin/python scripts/bench/p1_edge_throughput.py [--seconds 10] [--concurrency 32] [--rounds 2]

Both apps run in one Serve instance; rounds alternate (bare, ours, bare, ours) and the best round of each is
compared. Load comes from wrk (Debian package `wrk`) when installed, else from a Python client (which then
competes for the same 2 cores and flattens both sides: the script says which it used). The bare chain is an ingress deployment that reads the JSON body and awaits one call to a second
deployment, with the same replica counts, CPUs and max_ongoing_requests as our gateway and edge tier.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import closed_loop, machine, wrk_post  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="length of one wrk round")
    ap.add_argument("--requests", type=int, default=1500, help="requests per round without wrk")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--learners", type=int, default=1000, help="learner ids drawn per request (wrk mode)")
    ap.add_argument("--store", choices=["sqlite", "redis"], default="sqlite",
                    help="learner store; redis needs --redis-url (a server with appendfsync always)")
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--port", type=int, default=8311)
    args = ap.parse_args()

    from tutor_cluster import runtime
    from tutor_cluster.app.local import start_ray

    runtime.apply_ray_env()  # before ray is imported: the same Ray/Serve environment as `tutor-cluster up`
    import ray
    from ray import serve
    from starlette.requests import Request

    from tutor_cluster.api.auth import hash_key, new_key
    from tutor_cluster.app.builder import build_app
    from tutor_cluster.config.auth import ApiKey, AuthConfig
    from tutor_cluster.config.settings import load_settings

    key = new_key()
    env = {}
    if args.store == "redis":
        env["TUTOR__LEARNER__STORE__BACKEND"] = "redis"
        env["TUTOR__LEARNER__STORE__REDIS_URL"] = args.redis_url or "redis://127.0.0.1:6379/0"
    else:
        import tempfile
        env["TUTOR__LEARNER__STORE__SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench-learners.db")
    settings = load_settings(env={**os.environ, **env})
    settings = settings.model_copy(update={"auth": AuthConfig(api_keys=[ApiKey(id="bench", sha256=hash_key(key))])})
    gw, ed = settings.deployments.gateway, settings.deployments.edge

    @serve.deployment(name="bare-worker")
    class Worker:
        def work(self, payload: dict) -> dict:
            return {"reply": "ok", "echo": payload.get("message")}

    @serve.deployment(name="bare-ingress")
    class Ingress:
        def __init__(self, worker) -> None:
            self._worker = worker

        async def __call__(self, request: Request) -> dict:
            return await self._worker.work.remote(await request.json())

    start_ray(settings)  # the same Ray/Serve environment as `tutor-cluster up`
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_app(settings), name="tutor", route_prefix="/")
    bare = Ingress.options(**gw.serve_options()).bind(Worker.options(**ed.serve_options()).bind())
    serve.run(bare, name="bare", route_prefix="/bare")

    base = f"http://127.0.0.1:{args.port}"
    turn = {"learner_id": "bench", "session_id": "s", "exercise_id": "frac-add-1", "message": "6/8"}
    headers = {"Authorization": f"Bearer {key}"}

    async def ours(client) -> None:
        r = await client.post(f"{base}/v1/tutor/turns", json=turn, headers=headers)
        if r.status_code != 200 or r.json()["tier"] != "edge":
            raise RuntimeError(r.text)

    async def bare_chain(client) -> None:
        r = await client.post(f"{base}/bare", json=turn)
        if r.status_code != 200:
            raise RuntimeError(r.text)

    use_wrk = shutil.which("wrk") is not None

    def run_wrk() -> dict:
        results: dict[str, list[dict]] = {"bare": [], "gateway": []}
        targets = (("bare", f"{base}/bare", {}), ("gateway", f"{base}/v1/tutor/turns", headers))
        for _, url, hdrs in targets:  # warm-up
            wrk_post(url, turn, hdrs, connections=args.concurrency, seconds=3, vary_learner=args.learners)
        for _ in range(args.rounds):
            for name, url, hdrs in targets:
                res = wrk_post(url, turn, hdrs, connections=args.concurrency, seconds=args.seconds,
                               vary_learner=args.learners)
                results[name].append(res)
                print(f"  {name:8s} {res['rps']:7.1f} req/s  p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms"
                      f"  errors {res['errors']}", flush=True)
        return results

    async def run() -> dict:
        results: dict[str, list[dict]] = {"bare": [], "gateway": []}
        for name, fn in (("bare", bare_chain), ("gateway", ours)):  # warm-up
            await closed_loop(fn, requests=200, concurrency=args.concurrency, timeout_s=120)
        for _ in range(args.rounds):
            for name, fn in (("bare", bare_chain), ("gateway", ours)):
                res = await closed_loop(fn, requests=args.requests, concurrency=args.concurrency, timeout_s=300)
                results[name].append(res)
                print(f"  {name:8s} {res['rps']:7.1f} req/s  p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:6.1f} ms"
                      f"  errors {res['errors']}", flush=True)
        return results

    results = run_wrk() if use_wrk else asyncio.run(run())
    best = {k: max(v, key=lambda r: r["rps"]) for k, v in results.items()}
    ratio = best["gateway"]["rps"] / best["bare"]["rps"]
    load = f"wrk, {args.seconds} s/round" if use_wrk else f"python client, {args.requests} requests/round"
    print(f"\nP1 {dt.date.today()} on {machine()}, concurrency {args.concurrency}, {load}")
    print(f"  bare two-deployment chain : {best['bare']['rps']:7.1f} req/s (p50 {best['bare']['p50_ms']:.1f} ms)")
    print(f"  gateway edge-settled turn : {best['gateway']['rps']:7.1f} req/s (p50 {best['gateway']['p50_ms']:.1f} ms)")
    print(f"  ratio gateway/bare        : {ratio:.2f}x  (target >= 0.60)")
    print(json.dumps({"bench": "P1", "ratio": ratio, **{f"{k}_rps": v["rps"] for k, v in best.items()}}))
    serve.shutdown()
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
