"""Versioned curriculum collections in Qdrant behind one alias.

Collections are ``<alias>_v<N>``; the service reads ``<alias>``. A new version is filled completely, then made
live by one atomic alias operation (delete + create in a single ``update_collection_aliases`` call). Versions
that never went live (a job that died half-way) and versions beyond ``keep_versions`` are dropped by
:func:`cleanup`. The same code runs on the client's local mode (embedded default) and on a Qdrant server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tutor_cluster.config.knowledge import VectorStoreConfig

_LOCKED = "already accessed by another instance"


class StoreBusy(RuntimeError):
    """Local mode: another process holds the store (a re-embed job or a replica reloading)."""


@dataclass(frozen=True)
class Version:
    """A collection version and what it was built with."""

    collection: str
    number: int
    metadata: dict[str, Any]


def open_client(config: VectorStoreConfig, *, wait_s: float | None = None) -> Any:
    """A Qdrant client: local mode on ``path`` (waiting up to ``wait_s`` for another holder) or ``url``."""
    from qdrant_client import QdrantClient

    if config.url is not None:
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        return QdrantClient(url=config.url, api_key=key, timeout=30)
    path = Path(config.path or "").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (config.lock_wait_s if wait_s is None else wait_s)
    while True:
        try:
            return QdrantClient(path=str(path))
        except RuntimeError as exc:
            if _LOCKED not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(f"vector store {path} is held by another process") from None
            time.sleep(0.2)


def change_marker(config: VectorStoreConfig) -> tuple[int, int] | None:
    """A cheap stamp that changes when local-mode collections or aliases change (None for a server)."""
    if config.path is None:
        return None
    try:
        st = (Path(config.path).expanduser() / "meta.json").stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


class Collections:
    """Version bookkeeping over one client."""

    def __init__(self, client: Any, alias: str, *, payload_indexes: bool = False) -> None:
        self.client = client
        self.alias = alias
        self._payload_indexes = payload_indexes  # only a server uses them (local mode warns and ignores)
        self._name = re.compile(rf"^{re.escape(alias)}_v(\d+)$")

    def versions(self) -> dict[int, str]:
        names = (c.name for c in self.client.get_collections().collections)
        return {int(m.group(1)): m.group(0) for n in names if (m := self._name.match(n))}

    def live(self) -> Version | None:
        for a in self.client.get_aliases().aliases:
            if a.alias_name == self.alias:
                m = self._name.match(a.collection_name)
                info = self.client.get_collection(a.collection_name)
                meta = dict(getattr(info.config, "metadata", None) or {})
                return Version(a.collection_name, int(m.group(1)) if m else 0, meta)
        return None

    def create(self, dim: int, metadata: dict[str, Any]) -> Version:
        """A new, empty version numbered after every existing one."""
        from qdrant_client import models

        number = max(self.versions(), default=0) + 1
        name = f"{self.alias}_v{number}"
        meta = {**metadata, "version": number, "dim": dim}
        self.client.create_collection(
            name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE), metadata=meta)
        if self._payload_indexes:
            for key, schema in (("skill", "keyword"), ("lang", "keyword"), ("grade", "integer")):
                self.client.create_payload_index(name, key, field_schema=schema)
        return Version(name, number, meta)

    def swap(self, version: Version) -> None:
        """Make ``version`` live: one atomic alias operation."""
        from qdrant_client import models

        ops: list[Any] = []
        if self.live() is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        ops.append(models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=version.collection, alias_name=self.alias)))
        self.client.update_collection_aliases(change_aliases_operations=ops)

    def cleanup(self, keep: int) -> list[str]:
        """Drop versions that never went live (numbered above the live one) and all but ``keep`` live-or-older."""
        live = self.live()
        if live is None:
            return []
        dropped = []
        older = sorted((n for n in self.versions() if n <= live.number), reverse=True)
        for number, name in sorted(self.versions().items()):
            if number > live.number or number not in older[:keep]:
                self.client.delete_collection(name)
                dropped.append(name)
        return dropped

    def drop_unfinished(self) -> list[str]:
        """Drop versions above the live one: leftovers of runs that died before their swap."""
        live = self.live()
        top = live.number if live else 0
        gone = [name for number, name in self.versions().items() if number > top]
        for name in gone:
            self.client.delete_collection(name)
        return gone

    def scroll(self, collection: str, *, vectors: bool, batch: int = 1024) -> Iterator[Any]:
        offset = None
        while True:
            records, offset = self.client.scroll(collection, limit=batch, offset=offset, with_payload=True,
                                                 with_vectors=vectors)
            yield from records
            if offset is None:
                return

    def upsert(self, collection: str, ids: Iterable[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        from qdrant_client import models

        points = [models.PointStruct(id=i, vector=v.tolist(), payload=p) for i, v, p in zip(ids, vectors, payloads)]
        if points:
            self.client.upsert(collection, points=points, wait=True)
