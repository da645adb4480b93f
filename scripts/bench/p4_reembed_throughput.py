"""P4: Ray Data re-embedding throughput vs a plain single-process SentenceTransformer.encode of the same chunks,
and the time of a 1% incremental run vs the full run — all in one invocation.

    .venv/bin/python scripts/bench/p4_reembed_throughput.py [--documents 10000]

Reference: the same chunk texts (`Chunk.embed_text()`), the same bundled model, batch size and thread count,
encoded in this process with no Ray, no store. Ours: `tutor_cluster.pipelines.reembed.run` end to end (Ray Data
chunking, the embedding actor, upserts into Qdrant's local mode on disk, count check, alias swap).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, synthetic_curriculum, touch_documents  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=10_000)
    ap.add_argument("--actors", type=int, default=1, help="Embedding actors of the pipeline.")
    ap.add_argument("--threads", type=int, default=0, help="Torch threads per actor (default: cores/actors).")
    ap.add_argument("--change-every", type=int, default=100, help="1/N of the documents change (default 1%%).")
    args = ap.parse_args()

    from tutor_cluster import runtime

    runtime.apply_ray_env()
    from tutor_cluster.config.knowledge import KnowledgeSettings, VectorStoreConfig
    from tutor_cluster.knowledge.chunking import chunk_curriculum
    from tutor_cluster.knowledge.curriculum import load_curriculum
    from tutor_cluster.knowledge.embedding import Embedder
    from tutor_cluster.pipelines import reembed

    tmp = Path(tempfile.mkdtemp(prefix="p4-"))
    source = tmp / "curriculum"
    synthetic_curriculum(str(source), args.documents)
    settings = KnowledgeSettings(store=VectorStoreConfig(path=str(tmp / "qdrant")))
    threads = os.cpu_count() or 1
    per_actor = args.threads or max(1, threads // args.actors)
    texts = [c.embed_text() for c in chunk_curriculum(load_curriculum(source), settings.chunking)]

    t0 = time.perf_counter()
    embedder = Embedder(settings.embedding, threads=threads)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.encode(texts)
    t_plain = time.perf_counter() - t0
    del embedder
    plain_rate = len(texts) / t_plain
    print(f"plain encode: {len(texts)} chunks in {t_plain:.1f} s ({plain_rate:.0f}/s; model load {t_load:.1f} s)")

    import ray

    runtime.init_local_ray(num_cpus=threads, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    full = reembed.run(settings, source, actors=args.actors, threads=per_actor, progress=lambda _: None)
    ours_rate = full.chunks / full.seconds
    print(f"pipeline ({args.actors} actor(s) x {per_actor} thread(s)) full: {full.chunks} chunks in {full.seconds:.1f} s ({ours_rate:.0f}/s), "
          f"embedded {full.embedded}")
    changed = touch_documents(str(source), args.change_every)
    inc = reembed.run(settings, source, actors=args.actors, threads=per_actor, progress=lambda _: None)
    print(f"pipeline 1%: {changed} documents changed → embedded {inc.embedded}, copied {inc.copied} "
          f"in {inc.seconds:.1f} s (embed stream done at {inc.embed_seconds:.1f} s)")
    print()
    print(f"| {machine()} | {full.chunks} | {plain_rate:.0f} | {ours_rate:.0f} | **{ours_rate / plain_rate:.2f}×** | "
          f"{full.seconds:.1f} s | {inc.seconds:.1f} s | **{inc.seconds / full.seconds * 100:.1f} %** |")
    ray.shutdown()


if __name__ == "__main__":
    main()
