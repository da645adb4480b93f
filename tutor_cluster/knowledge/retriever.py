"""Retrieval over the live curriculum version, and the Serve deployment that owns the embedder."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel, Field
from ray import serve

from tutor_cluster import runtime
from tutor_cluster.config.knowledge import KnowledgeSettings
from tutor_cluster.errors import Unavailable
from tutor_cluster.knowledge.embedding import Embedder
from tutor_cluster.knowledge.index import Filters, Hit, SnapshotIndex
from tutor_cluster.knowledge.store import (
    Collections,
    StoreBusy,
    Version,
    change_marker,
    open_client,
)

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only

log = logging.getLogger(f"ray.serve.{__name__}")
_EMPTY = SnapshotIndex(np.zeros((0, 1), dtype=np.float32), [])


class Passage(BaseModel):
    """A retrieved chunk, as returned by the API and cited by turns."""

    chunk_id: str
    title: str
    section: str
    text: str
    skill: str
    grade: int
    locale: str
    standards: list[str]
    source: str = Field(description="Curriculum file and line.")
    score: float = Field(description="Cosine similarity to the query.")

    @classmethod
    def of(cls, hit: Hit) -> "Passage":
        p = hit.payload
        return cls(chunk_id=p["chunk_id"], title=p["title"], section=p.get("section", ""), text=p["text"],
                   skill=p["skill"], grade=p["grade"], locale=p["locale"], standards=p.get("standards", []),
                   source=p.get("source", ""), score=round(hit.score, 4))


class SearchResult(BaseModel):
    version: int | None = Field(description="Live curriculum version the passages come from (null: none is live).")
    collection: str | None
    embedding_model: str
    passages: list[Passage]
    latency_ms: dict[str, float] = Field(description="embed and search milliseconds.")


class KnowledgeUnavailable(Unavailable):
    """No usable curriculum index (none built, or built with another embedding model)."""

    kind = "curriculum_unavailable"


class Retriever:
    """Embeds queries and searches the live version; reloads when a new version goes live."""

    def __init__(self, settings: KnowledgeSettings, *, embedder_factory: Callable[..., Any] = Embedder,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.settings = settings
        self._clock = clock
        self._embedder = embedder_factory(settings.embedding)
        store = settings.store
        backend = settings.retrieval.backend
        self.backend = backend if backend != "auto" else ("snapshot" if store.path is not None else "qdrant")
        if self.backend == "qdrant" and store.path is not None:
            raise ValueError("knowledge.retrieval.backend 'qdrant' needs knowledge.store.url: local mode is "
                             "single-process; use 'snapshot' (or 'auto') with a path")
        self._client = open_client(store) if self.backend == "qdrant" else None
        self._lock = threading.Lock()
        self._marker: Any = object()
        self.version: Version | None = None
        self._index = _EMPTY
        self.loaded_at: float | None = None

    # ---------------------------------------------------------------- loading
    def refresh(self, *, force: bool = False) -> bool:
        """Look for a new live version; load it. False when nothing changed or the store is busy."""
        with self._lock:
            if self.backend == "qdrant":
                live = Collections(self._client, self.settings.store.alias).live()
                changed = (live and live.collection) != (self.version and self.version.collection)
                self.version = live
                return bool(changed)
            marker = change_marker(self.settings.store)
            if marker == self._marker and not force:
                return False
            try:
                client = open_client(self.settings.store, wait_s=0)
            except StoreBusy:
                return False  # a re-embed job holds the store; keep serving what we have, retry next tick
            try:
                cols = Collections(client, self.settings.store.alias)
                live = cols.live()
                changed = (live and live.collection) != (self.version and self.version.collection)
                if changed:
                    self._index = self._load(cols, live) if live else _EMPTY
                    self.version = live
                    self.loaded_at = time.time()
                self._marker = marker
                return bool(changed)
            finally:
                client.close()

    @staticmethod
    def _load(cols: Collections, live: Version) -> SnapshotIndex:
        records = list(cols.scroll(live.collection, vectors=True))
        vectors = np.asarray([r.vector for r in records], dtype=np.float32).reshape(len(records), -1)
        return SnapshotIndex(vectors, [r.payload or {} for r in records])

    # ---------------------------------------------------------------- search
    def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> SearchResult:
        version = self.version
        model = self.settings.embedding.model
        if version is None:
            raise KnowledgeUnavailable("no curriculum version is live yet; run the re-embed job "
                                 "(python -m tutor_cluster.pipelines.reembed --source DIR)")
        built = version.metadata.get("embedding_model")
        if built != model:
            raise KnowledgeUnavailable(f"the live curriculum ({version.collection}) was embedded with "
                                 f"{built!r} but this service embeds queries with {model!r}; re-embed")
        k = self.settings.retrieval.top_k if k is None else k
        t0 = self._clock()
        vector = self._embedder.encode([query])[0]
        t1 = self._clock()
        hits = self._search(vector, k, filters)
        t2 = self._clock()
        return SearchResult(version=version.number, collection=version.collection, embedding_model=model,
                            passages=[Passage.of(h) for h in hits],
                            latency_ms={"embed": round((t1 - t0) * 1000, 3), "search": round((t2 - t1) * 1000, 3)})

    def _search(self, vector: Any, k: int, filters: Filters | None) -> list[Hit]:
        min_score = self.settings.retrieval.min_score
        if self.backend == "snapshot":
            return self._index.search(vector, k, filters, min_score)
        from qdrant_client import models

        must = []
        for key, value in (filters.model_dump(exclude_none=True) if filters else {}).items():
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
        result = self._client.query_points(
            self.settings.store.alias, query=vector.tolist(), limit=k, score_threshold=min_score,
            query_filter=models.Filter(must=must) if must else None, with_payload=True)
        return [Hit(score=p.score, payload=p.payload or {}) for p in result.points]

    def status(self) -> dict[str, Any]:
        v = self.version
        return {"backend": self.backend, "version": v.number if v else None,
                "collection": v.collection if v else None, "chunks": len(self._index) if v else None,
                "embedding_model": self.settings.embedding.model, "loaded_at": self.loaded_at}


@serve.deployment(name="knowledge")
class Knowledge:
    """Serve deployment: one embedder per replica; a background thread picks up new live versions."""

    def __init__(self, settings: KnowledgeSettings) -> None:
        runtime.bind_replica_grpc_on_loopback()
        self._retriever = Retriever(settings)
        self._retriever.refresh(force=True)
        self._stop = threading.Event()
        interval = settings.retrieval.refresh_interval_s
        self._thread = threading.Thread(target=self._poll, args=(interval,), daemon=True, name="knowledge-refresh")
        self._thread.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if self._retriever.refresh():
                    log.info("curriculum version %s is live", self._retriever.status()["version"])
            except Exception:  # noqa: BLE001 - keep serving the loaded version; log and retry next tick
                log.exception("curriculum refresh failed")

    async def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> SearchResult:
        return await asyncio.to_thread(self._retriever.search, query, k, filters)

    async def reload(self) -> dict[str, Any]:
        """Pick up a new live version now (the re-embed job calls this after its swap)."""
        await asyncio.to_thread(self._retriever.refresh, force=True)
        return self._retriever.status()

    async def status(self) -> dict[str, Any]:
        return self._retriever.status()

    def __del__(self) -> None:
        self._stop.set()
