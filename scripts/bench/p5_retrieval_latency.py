"""P5: retrieval latency added to a turn on a 10k-chunk curriculum in the embedded default (target p50 ≤ 20 ms),
next to Qdrant's client local mode searching the same points — one invocation.

    .venv/bin/python scripts/bench/p5_retrieval_latency.py [--chunks 10000] [--queries 300]

A 10k-chunk version is written to a local-mode store (random unit vectors with the sample's skills, grades and
languages: search time does not depend on the vector values). Each query is a real learner sentence embedded with
the bundled model and filtered by skill + language, as a turn does. Measured, per query:
  (a) Qdrant local mode: embed + `query_points` on the alias (the brute-force reference);
  (b) ours in-process: `Retriever.search` (embed + snapshot index);
  (c) ours as a turn sees it: the `knowledge` Serve deployment called through a DeploymentHandle.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pct  # noqa: E402

QUERIES = ["how do I add fractions with different denominators", "what is a common denominator",
           "why is 1/2 + 1/4 not 2/6", "how do I simplify 12/16", "solve 2x + 3 = 7 step by step",
           "what does the numerator mean", "how do I write a for loop in python", "check my equation answer"]
SKILLS = ["fractions.add", "fractions.simplify", "algebra.linear", "python.basics"]


def build(settings, n: int) -> None:  # noqa: ANN001
    from tutor_cluster.knowledge.chunking import point_id
    from tutor_cluster.knowledge.store import Collections, open_client

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = [{"chunk_id": f"bulk-{i}#0", "title": f"Note {i}", "section": "", "text": f"note {i}",
                 "skill": SKILLS[i % 4], "grade": 5 + i % 4, "locale": "en" if i % 5 else "es",
                 "lang": "en" if i % 5 else "es", "standards": [], "source": f"bulk.jsonl:{i + 1}"} for i in range(n)]
    client = open_client(settings.store)
    try:
        cols = Collections(client, settings.store.alias)
        v = cols.create(384, {"embedding_model": settings.embedding.model})
        for s in range(0, n, 1024):
            cols.upsert(v.collection, [point_id(p["chunk_id"]) for p in payloads[s:s + 1024]], vectors[s:s + 1024],
                        payloads[s:s + 1024])
        cols.swap(v)
    finally:
        client.close()


def summary(name: str, ms: list[float]) -> str:
    return f"{name:<34} p50 {pct(ms, 50):7.2f} ms   p99 {pct(ms, 99):7.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()

    from tutor_cluster import runtime

    runtime.apply_ray_env()
    from qdrant_client import models

    from tutor_cluster.config.knowledge import KnowledgeSettings, VectorStoreConfig
    from tutor_cluster.knowledge.embedding import Embedder
    from tutor_cluster.knowledge.index import Filters
    from tutor_cluster.knowledge.retriever import Knowledge, Retriever
    from tutor_cluster.knowledge.store import open_client

    tmp = Path(tempfile.mkdtemp(prefix="p5-"))
    settings = KnowledgeSettings(store=VectorStoreConfig(path=str(tmp / "qdrant")))
    t0 = time.perf_counter()
    build(settings, args.chunks)
    print(f"built a {args.chunks}-chunk version in {time.perf_counter() - t0:.1f} s")
    work = [(QUERIES[i % len(QUERIES)], SKILLS[i % len(SKILLS)]) for i in range(args.queries)]

    embedder = Embedder(settings.embedding)
    client = open_client(settings.store)
    ref: list[float] = []
    for q, skill in work[: max(20, args.queries // 5)]:  # brute force in Python is slow: fewer queries
        t = time.perf_counter()
        vec = embedder.encode([q])[0]
        client.query_points(settings.store.alias, query=vec.tolist(), limit=3, score_threshold=0.25,
                            query_filter=models.Filter(must=[
                                models.FieldCondition(key="skill", match=models.MatchValue(value=skill)),
                                models.FieldCondition(key="lang", match=models.MatchValue(value="en"))]))
        ref.append((time.perf_counter() - t) * 1000)
    client.close()
    del embedder

    retriever = Retriever(settings)
    t0 = time.perf_counter()
    retriever.refresh(force=True)
    print(f"snapshot load: {time.perf_counter() - t0:.2f} s for {retriever.status()['chunks']} chunks")
    local: list[float] = []
    for q, skill in work:
        t = time.perf_counter()
        retriever.search(q, 3, Filters(skill=skill, lang="en"))
        local.append((time.perf_counter() - t) * 1000)
    del retriever

    import ray
    from ray import serve

    runtime.init_local_ray(num_cpus=2, log_to_driver=False)
    handle = serve.run(Knowledge.options(ray_actor_options={"num_cpus": 0.5}).bind(settings), name="p5",
                       route_prefix=None)
    served: list[float] = []

    async def through_serve() -> None:  # throughput mode: handles live on an event loop
        await handle.search.remote("warm up", 3, None)
        for q, skill in work:
            t = time.perf_counter()
            await handle.search.remote(q, 3, Filters(skill=skill, lang="en"))
            served.append((time.perf_counter() - t) * 1000)

    asyncio.run(through_serve())

    print(summary("(a) Qdrant local mode query_points", ref))
    print(summary("(b) Retriever.search in-process", local))
    print(summary("(c) knowledge deployment (Serve)", served))
    print()
    print(f"| {machine()} | {args.chunks} | {pct(ref, 50):.1f} / {pct(ref, 99):.1f} | "
          f"{pct(local, 50):.1f} / {pct(local, 99):.1f} | **{pct(served, 50):.1f}** / {pct(served, 99):.1f} | "
          f"{pct(ref, 50) / pct(served, 50):.1f}× |")
    ray.shutdown()  # takes Serve down with it (serve.shutdown needs the handles' closed event loop)


if __name__ == "__main__":
    main()
