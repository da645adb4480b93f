"""Curriculum re-embedding as a Ray Data job.

    python -m tutor_cluster.pipelines.reembed --source DIR [--full] [--config FILE]

read → validate (whole curriculum, before the store is touched) → chunk + hash → compare with the live version →
embed only new/changed chunks (Ray Data, actor pool: the model loads once per actor) → upsert in batches
into a new version → copy unchanged vectors → check the count → atomic alias swap → clean up old versions.
A run that dies before its swap leaves the old version live; the next run drops its leftovers. A rerun with no
change embeds nothing and keeps the live version. Exit codes: 0 done, 1 failed, 2 bad input (one line naming
file:line: field).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from tutor_cluster.config.knowledge import EmbeddingConfig, KnowledgeSettings
from tutor_cluster.knowledge.chunking import Chunk, chunk_curriculum
from tutor_cluster.knowledge.curriculum import CurriculumError, load_curriculum
from tutor_cluster.knowledge.store import Collections, Version, open_client

UPSERT_BATCH = 256


@dataclass
class Summary:
    """What a run did; printed as one JSON line at the end."""

    files: int = 0
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    copied: int = 0
    deleted: int = 0
    version: int | None = None
    previous_version: int | None = None
    swapped: bool = False
    dropped_collections: list[str] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    embed: list[Chunk]
    copy: list[Chunk]
    deleted: list[str]
    changed: bool


def plan(chunks: list[Chunk], live: dict[str, dict[str, Any]] | None) -> Plan:
    """Which chunks to embed (new or text changed), which to copy (same text), which ids are gone."""
    if live is None:
        return Plan(list(chunks), [], [], True)
    embed, copy = [], []
    meta_changed = False
    for c in chunks:
        old = live.get(c.chunk_id)
        if old is None or old.get("hash") != c.hash:
            embed.append(c)
        else:
            copy.append(c)
            meta_changed |= old.get("meta_hash") != c.meta_hash
    ids = {c.chunk_id for c in chunks}
    deleted = sorted(set(live) - ids)
    return Plan(embed, copy, deleted, bool(embed or deleted or meta_changed))


class _EmbedBatch:
    """Ray Data actor: loads the embedder once, encodes batches."""

    def __init__(self, config: dict[str, Any], threads: int | None) -> None:
        from tutor_cluster.knowledge.embedding import Embedder

        self._embedder = Embedder(EmbeddingConfig(**config), threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self._embedder.encode([str(t) for t in batch["text"]])
        return {"chunk_id": batch["chunk_id"], "vector": vectors}


def _embed_with_ray(chunks: list[Chunk], settings: KnowledgeSettings, actors: int,
                    threads: int | None, gpus: float = 0) -> Any:
    """An iterator of numpy batches {chunk_id, vector}, streamed from an actor pool."""
    import ray.data

    # Longest first and in length order, so each batch pads little (as SentenceTransformer.encode sorts its input).
    rows = sorted(({"chunk_id": c.chunk_id, "text": c.embed_text()} for c in chunks), key=lambda r: -len(r["text"]))
    ds = ray.data.from_items(rows)
    embedded = ds.map_batches(
        _EmbedBatch,
        fn_constructor_kwargs={"config": settings.embedding.model_dump(), "threads": threads},
        batch_size=settings.embedding.batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        **({"num_gpus": gpus} if gpus else {}),  # with a GPU the embedder's device "auto" picks CUDA
        batch_format="numpy",
    )
    return embedded.iter_batches(batch_size=UPSERT_BATCH, batch_format="numpy", prefetch_batches=2)


def run(settings: KnowledgeSettings, source: str | Path, *, full: bool = False, actors: int = 1,
        threads: int | None = None, gpus: float = 0, progress: Callable[[str], None] = print,
        notify: Callable[[], None] | None = None) -> Summary:
    """One re-embed run (Ray must be initialised). Raises CurriculumError before touching the store."""
    t0 = time.perf_counter()
    summary = Summary()
    curriculum = load_curriculum(source)
    summary.files, summary.documents = curriculum.files, len(curriculum.documents)
    chunks = chunk_curriculum(curriculum, settings.chunking)  # on the driver: 0.2 s for 10k documents, where a
    # Ray Data flat_map measured 4 s of scheduling (docs/benchmarks.md, P4); embedding is what needs the cluster
    summary.chunks = len(chunks)
    progress(f"read {summary.files} files, {summary.documents} documents, {summary.chunks} chunks")

    client = open_client(settings.store)
    try:
        cols = Collections(client, settings.store.alias, payload_indexes=settings.store.url is not None)
        summary.dropped_collections = cols.drop_unfinished()
        live = cols.live()
        summary.previous_version = live.number if live else None
        model = settings.embedding.model
        reusable = live is not None and not full and live.metadata.get("embedding_model") == model
        existing = {r.payload["chunk_id"]: {**r.payload, "vector": r.vector}
                    for r in cols.scroll(live.collection, vectors=True)} if reusable and live else None
        work = plan(chunks, existing)
        summary.deleted = len(work.deleted)
        if not work.changed:
            summary.version, summary.reason = summary.previous_version, "no change: the live version is current"
            summary.seconds = round(time.perf_counter() - t0, 3)
            progress(summary.reason)
            return summary
        if live is not None and not reusable:
            progress("full re-embed: " + ("--full given" if full else f"model changed to {model}"))
        new = _build(cols, work, existing, settings, (actors, threads, gpus), progress, summary, source)
        count = client.count(new.collection, exact=True).count
        if count != len(chunks):
            raise RuntimeError(f"{new.collection} holds {count} points, expected {len(chunks)}: not swapping")
        cols.swap(new)
        summary.version, summary.swapped = new.number, True
        summary.dropped_collections += cols.cleanup(settings.store.keep_versions)
        progress(f"{new.collection} is live (alias {settings.store.alias!r})")
    finally:
        client.close()
    if notify is not None:
        notify()
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _build(cols: Collections, work: Plan, existing: dict[str, dict[str, Any]] | None, settings: KnowledgeSettings,
           pool: tuple[int, int | None, float], progress: Callable[[str], None], summary: Summary,
           source: str | Path) -> Version:
    meta = {"embedding_model": settings.embedding.model, "built_at": datetime.now(timezone.utc).isoformat(),
            "source": str(source), "chunks": len(work.embed) + len(work.copy)}
    by_id = {c.chunk_id: c for c in work.embed}
    new: Version | None = None
    if existing and (work.copy or not work.embed):  # an incremental run: the live dimension is known
        new = cols.create(len(next(iter(existing.values()))["vector"]), meta)
    # Embedding runs on Ray (a background thread drains its stream) while this thread copies unchanged vectors;
    # every store write stays on this thread (the local-mode client is not thread-safe).
    batches: queue.Queue[Any] = queue.Queue(maxsize=8)
    t_embed = time.perf_counter()

    def drain() -> None:
        try:
            if work.embed:
                for batch in _embed_with_ray(work.embed, settings, *pool):
                    batches.put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            batches.put(exc)
        batches.put(None)

    worker = threading.Thread(target=drain, daemon=True, name="reembed-embed")
    worker.start()
    if new is not None:
        for start in range(0, len(work.copy), UPSERT_BATCH):
            part = work.copy[start:start + UPSERT_BATCH]
            vectors = np.asarray([existing[c.chunk_id]["vector"] for c in part], dtype=np.float32)  # type: ignore[index]
            cols.upsert(new.collection, [c.point_id for c in part], vectors, [c.payload() for c in part])
            summary.copied += len(part)
    done = 0
    while (batch := batches.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        vectors = np.asarray(batch["vector"], dtype=np.float32)
        if new is None:
            new = cols.create(int(vectors.shape[1]), meta)
        batch_chunks = [by_id[str(i)] for i in batch["chunk_id"]]
        cols.upsert(new.collection, [c.point_id for c in batch_chunks], vectors, [c.payload() for c in batch_chunks])
        done += len(batch_chunks)
        rate = done / max(time.perf_counter() - t_embed, 1e-9)
        progress(f"embedded {done}/{len(work.embed)} chunks ({rate:.0f}/s)")
    worker.join()
    summary.embedded = done
    summary.embed_seconds = round(time.perf_counter() - t_embed, 3)
    if new is None:
        raise RuntimeError("nothing to build")
    if work.copy:
        progress(f"kept {summary.copied} unchanged chunks")
    return new


def notify_service(*app_names: str) -> Callable[[], None]:
    """Ask a running service's knowledge replicas (of each application named) to load the new version now (they
    also poll)."""

    def _notify() -> None:
        from ray import serve

        for app_name in app_names:
            try:
                handle = serve.get_deployment_handle("knowledge", app_name=app_name)
                status = handle.reload.remote().result(timeout_s=60)
                print(f"[reembed] {app_name} reloaded: version {status.get('version')}", flush=True)
            except Exception as exc:  # noqa: BLE001 - no running service is fine: replicas poll anyway
                print(f"[reembed] {app_name} not notified ({type(exc).__name__}); replicas poll for new versions",
                      flush=True)

    return _notify


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tutor_cluster.pipelines.reembed",
                                description="Re-embed a curriculum folder into a new Qdrant version and swap the alias.")
    p.add_argument("--source", required=True, help="Curriculum folder (*.jsonl, *.md).")
    p.add_argument("--full", action="store_true", help="Embed every chunk, not only new or changed ones.")
    p.add_argument("--config", help="Settings file (default: $TUTOR_CONFIG or the shipped default.yaml).")
    p.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray).")
    p.add_argument("--actors", type=int, default=1, help="Embedding actors (default 1).")
    p.add_argument("--threads", type=int, default=None, help="Torch threads per actor (default: cores/actors).")
    p.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per embedding actor (default 0: CPU).")
    return p


def main(argv: list[str] | None = None) -> int:
    from tutor_cluster import runtime
    from tutor_cluster.config.settings import ConfigError, load_settings

    args = _parser().parse_args(argv)
    if args.actors < 1 or args.gpus_per_actor < 0 or (args.threads is not None and args.threads < 1):
        print("reembed: --actors and --threads must be at least 1, --gpus-per-actor at least 0", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"reembed: {exc}", file=sys.stderr)
        return 2
    try:
        curriculum_check = load_curriculum(args.source)  # fail fast, before Ray starts
    except CurriculumError as exc:
        print(f"reembed: invalid curriculum: {exc}", file=sys.stderr)
        return 2
    del curriculum_check
    address = args.address or os.environ.get("RAY_ADDRESS")
    runtime.apply_ray_env(local=not address)
    import ray

    ray.data.DataContext.get_current().enable_progress_bars = False
    if not ray.is_initialized():
        if address:
            runtime.join_ray(address, namespace=settings.ray.namespace, log_to_driver=False)
        else:
            runtime.init_local_ray(num_cpus=os.cpu_count(), log_to_driver=False)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.actors)

    def progress(line: str) -> None:
        print(f"[reembed] {line}", flush=True)

    try:
        summary = run(settings.knowledge, args.source, full=args.full, actors=args.actors, threads=threads,
                      gpus=args.gpus_per_actor,
                      progress=progress, notify=notify_service(*(
                          settings.app_name(name) for name in settings.region_names()
                          if settings.region(name).models_from is None)) if address else None)
    except CurriculumError as exc:
        print(f"reembed: invalid curriculum: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the operator; the live version is untouched
        print(f"reembed: failed, the live version is unchanged: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"summary": asdict(summary)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
