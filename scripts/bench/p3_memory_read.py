"""P3: a learner-context read through the actor path vs a direct Redis round trip from the same process.
Targets: p50 ratio <= 2; p99 <= 5 ms under 100 concurrent readers.

    .venv/bin/python scripts/bench/p3_memory_read.py [--learners 1000] [--reads 3000] [--concurrency 100]

Starts its own redis-server (loopback, AOF, appendfsync always) and a local Ray; seeds the learners through
the memory actors, warms their caches, then measures in one run: (a) direct `HGET` of the learner's hash plus
parsing it into a LearnerContext, (b) the same read through `LearnerMemory.get` (actor cache hit), each first
one at a time, then with ``--concurrency`` readers in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, pct  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--reads", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--actors", type=int, default=4)
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")

    from tutor_cluster import runtime

    runtime.apply_ray_env()
    import ray
    import redis

    from tutor_cluster.config.learner import MemoryConfig, StoreConfig
    from tutor_cluster.learner.context import LearnerContext, LearnerUpdate, TurnSummary
    from tutor_cluster.learner.memory import LearnerMemory

    port, workdir = _free_port(), tempfile.mkdtemp()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
                               "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                              stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        runtime.init_local_ray(num_cpus=8, namespace="p3-bench", log_to_driver=False)
        cfg = MemoryConfig(actors=args.actors, store=StoreConfig(backend="redis", redis_url=url, key_prefix="p3"),
                           cache_capacity=args.learners)
        memory = LearnerMemory(cfg, namespace="p3-bench")
        ids = [f"p3-{i}" for i in range(args.learners)]
        refs = []
        for i, lid in enumerate(ids):
            for j in range(5):  # a realistic context: a few skills, misconceptions, recent turns
                refs.append(memory.apply(lid, LearnerUpdate(
                    turn_id=f"{i}-{j}", skill=f"skill-{j % 3}", correct=j % 2 == 0, misconceptions=["sign_error"],
                    summary=TurnSummary(turn_id=f"{i}-{j}", at=time.time(), summary="x" * 120))))
        ray.get(refs)
        ray.get([memory.get(lid) for lid in ids])  # warm caches
        rng = random.Random(3)
        sample = [rng.choice(ids) for _ in range(args.reads)]

        def direct(lid: str) -> None:
            LearnerContext.model_validate_json(client.hget(f"p3:learner:{{{lid}}}", "ctx"))

        def timed(fn, keys) -> list[float]:
            out = []
            for k in keys:
                t0 = time.perf_counter()
                fn(k)
                out.append(time.perf_counter() - t0)
            return out

        seq_direct = timed(direct, sample)
        seq_actor = timed(lambda k: ray.get(memory.get(k)), sample)

        async def concurrent(read) -> list[float]:
            """``--concurrency`` readers share the sample; latency of each read."""
            lat: list[float] = []
            queue = list(sample)

            async def reader() -> None:
                while queue:
                    k = queue.pop()
                    t0 = time.perf_counter()
                    await read(k)
                    lat.append(time.perf_counter() - t0)

            await asyncio.gather(*(reader() for _ in range(args.concurrency)))
            return lat

        async def actor_read(k: str) -> None:
            await memory.get(k)

        async def concurrent_direct() -> list[float]:
            aclient = redis.asyncio.Redis.from_url(url, max_connections=args.concurrency)

            async def read(k: str) -> None:
                LearnerContext.model_validate_json(await aclient.hget(f"p3:learner:{{{k}}}", "ctx"))

            try:
                return await concurrent(read)
            finally:
                await aclient.aclose()

        t0 = time.perf_counter()
        conc_actor = asyncio.run(concurrent(actor_read))
        actor_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        conc_direct = asyncio.run(concurrent_direct())
        direct_wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    ms = lambda xs, q: pct(xs, q) * 1000  # noqa: E731
    ratio = ms(seq_actor, 50) / ms(seq_direct, 50)
    print(f"P3 {dt.date.today()} on {machine()}; {args.learners} learners, {args.reads} reads, "
          f"{args.actors} actors, Redis appendfsync always")
    print(f"  {'':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'reads/s':>9s}")
    print(f"  {'direct Redis HGET + parse, 1 at a time':34s} {ms(seq_direct, 50):8.3f} {ms(seq_direct, 99):8.3f}")
    print(f"  {'actor path (cache hit), 1 at a time':34s} {ms(seq_actor, 50):8.3f} {ms(seq_actor, 99):8.3f}")
    print(f"  {f'direct Redis, {args.concurrency} readers':34s} {ms(conc_direct, 50):8.3f} {ms(conc_direct, 99):8.3f}"
          f" {len(conc_direct) / direct_wall:9.0f}")
    print(f"  {f'actor path, {args.concurrency} readers':34s} {ms(conc_actor, 50):8.3f} {ms(conc_actor, 99):8.3f}"
          f" {len(conc_actor) / actor_wall:9.0f}")
    print(f"  p50 ratio actor/direct: {ratio:.2f}x (target <= 2); p99 at {args.concurrency} readers: "
          f"{ms(conc_actor, 99):.2f} ms (target <= 5)")
    print(json.dumps({"bench": "P3", "p50_ratio": ratio, "p99_concurrent_ms": ms(conc_actor, 99)}))


if __name__ == "__main__":
    main()
