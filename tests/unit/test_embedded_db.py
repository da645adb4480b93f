"""Processes that open one fresh SQLite file at the same moment (two memory actors starting together did) all
get a working connection."""

import multiprocessing
from pathlib import Path


def _open(path: str, barrier, results) -> None:
    from tutor_cluster.learner.stores import SQLiteStore

    barrier.wait()
    try:
        store = SQLiteStore(path, timeout_s=1.0)
        store.ping()
        store.close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_many_processes_open_a_fresh_file_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(3):
        path = str(tmp_path / f"fresh-{attempt}.db")
        barrier, results = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(8)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * 8, outcomes
