"""Versioned collections on the Qdrant client's local mode (real qdrant-client), and the snapshot index
checked against Qdrant's own search on the same points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tutor_cluster.config.knowledge import VectorStoreConfig
from tutor_cluster.knowledge.index import Filters, SnapshotIndex
from tutor_cluster.knowledge.store import (
    Collections,
    StoreBusy,
    change_marker,
    open_client,
)


def _points(n: int, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    payloads = [{"chunk_id": f"d{i}#0", "skill": f"s{i % 3}", "grade": 5 + i % 2, "lang": "en" if i % 4 else "es"}
                for i in range(n)]
    return vectors, payloads


@pytest.fixture()
def store(tmp_path: Path) -> VectorStoreConfig:
    return VectorStoreConfig(path=str(tmp_path / "q"), lock_wait_s=0.5)


def test_versions_swap_atomically_and_cleanup_keeps_the_newest(store: VectorStoreConfig) -> None:
    client = open_client(store)
    try:
        cols = Collections(client, "curriculum")
        assert cols.live() is None
        vectors, payloads = _points(10)
        ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(10)]
        made = []
        for _ in range(3):
            v = cols.create(16, {"embedding_model": "m"})
            cols.upsert(v.collection, ids, vectors, payloads)
            cols.swap(v)
            made.append(v)
            live = cols.live()
            assert live is not None and live.collection == v.collection and live.metadata["embedding_model"] == "m"
            assert live.metadata["dim"] == 16 and live.metadata["version"] == v.number
        assert [v.number for v in made] == [1, 2, 3]
        half = cols.create(16, {"embedding_model": "m"})  # a run that died before its swap
        assert cols.live().collection == "curriculum_v3"
        assert sorted(cols.cleanup(keep=2)) == ["curriculum_v1", half.collection]
        assert sorted(cols.versions()) == [2, 3]
        assert cols.create(16, {}).number == 4 and cols.drop_unfinished() == ["curriculum_v4"]
    finally:
        client.close()


def test_local_mode_is_single_process_and_busy_is_reported(store: VectorStoreConfig) -> None:
    before = change_marker(store)
    holder = open_client(store)
    try:
        with pytest.raises(StoreBusy):
            open_client(store, wait_s=0.3)
        Collections(holder, "curriculum").create(4, {})
    finally:
        holder.close()
    assert change_marker(store) != before  # new collections / aliases touch the marker replicas poll
    open_client(store).close()  # released on close


def test_snapshot_index_matches_qdrant_search(store: VectorStoreConfig) -> None:
    from qdrant_client import models

    vectors, payloads = _points(300, seed=1)
    client = open_client(store)
    try:
        cols = Collections(client, "c")
        v = cols.create(16, {})
        ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(300)]
        cols.upsert(v.collection, ids, vectors, payloads)
        index = SnapshotIndex(vectors, payloads)
        rng = np.random.default_rng(7)
        for filters in (Filters(), Filters(skill="s1"), Filters(skill="s2", grade=6), Filters(lang="es", grade=5)):
            query = rng.normal(size=16).astype(np.float32)
            must = [models.FieldCondition(key=k, match=models.MatchValue(value=val))
                    for k, val in filters.model_dump(exclude_none=True).items()]
            ref = client.query_points(v.collection, query=query.tolist(), limit=5,
                                      query_filter=models.Filter(must=must) if must else None).points
            got = index.search(query / np.linalg.norm(query), 5, filters)
            assert [h.payload["chunk_id"] for h in got] == [p.payload["chunk_id"] for p in ref]
            assert np.allclose([h.score for h in got], [p.score for p in ref], atol=1e-5)
    finally:
        client.close()
    assert SnapshotIndex(vectors, payloads).search(vectors[0], 3, Filters(skill="none")) == []
    assert len(SnapshotIndex(vectors, payloads).search(vectors[0], 3, min_score=0.999)) == 1
