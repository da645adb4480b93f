"""The re-embed pipeline on real Ray Data, the bundled embedder and Qdrant's local mode: incremental runs,
idempotent reruns, bad input exits 2 without touching the live version, a run killed half-way leaves the old
version live."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import REPO_ROOT
from tests.service import local_ray
from tutor_cluster.config.knowledge import KnowledgeSettings, VectorStoreConfig
from tutor_cluster.config.settings import SAMPLE_CURRICULUM, SHIPPED_CONFIGS
from tutor_cluster.knowledge.chunking import chunk_curriculum
from tutor_cluster.knowledge.curriculum import load_curriculum
from tutor_cluster.knowledge.retriever import Retriever
from tutor_cluster.knowledge.store import Collections, open_client
from tutor_cluster.pipelines import reembed

REPO = REPO_ROOT
SAMPLE = SAMPLE_CURRICULUM
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local():
    import ray

    with local_ray(num_cpus=2):
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray


def _settings(tmp: Path) -> KnowledgeSettings:
    return KnowledgeSettings(store=VectorStoreConfig(path=str(tmp / "qdrant"), lock_wait_s=5))


def _live_ids(settings: KnowledgeSettings) -> tuple[int | None, set[str]]:
    client = open_client(settings.store)
    try:
        cols = Collections(client, settings.store.alias)
        live = cols.live()
        if live is None:
            return None, set()
        return live.number, {r.payload["chunk_id"] for r in cols.scroll(live.collection, vectors=False)}
    finally:
        client.close()


def test_incremental_runs(ray_local, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    source = tmp_path / "c"
    shutil.copytree(SAMPLE, source)
    all_chunks = chunk_curriculum(load_curriculum(source), settings.chunking)

    first = reembed.run(settings, source, progress=lambda _: None)
    assert first.swapped and first.version == 1 and first.embedded == first.chunks == len(all_chunks)
    assert _live_ids(settings) == (1, {c.chunk_id for c in all_chunks})

    again = reembed.run(settings, source, progress=lambda _: None)  # no change: nothing embedded, same version
    assert (again.embedded, again.copied, again.swapped, again.version) == (0, 0, False, 1)

    doc = source / "linear-equations.md"  # change one file: only its chunks are re-embedded
    doc.write_text(doc.read_text().replace("like a balance", "like a pair of scales"))
    own = [c for c in chunk_curriculum(load_curriculum(source), settings.chunking)
           if c.source.startswith("linear-equations.md")]
    changed = reembed.run(settings, source, progress=lambda _: None)
    assert changed.version == 2 and changed.swapped
    assert 0 < changed.embedded <= len(own) and changed.copied == len(all_chunks) - changed.embedded
    assert changed.deleted == 0

    gone = {c.chunk_id for c in all_chunks if c.source.startswith("python-basics.md")}
    (source / "python-basics.md").unlink()  # delete one: its chunks are gone
    deleted = reembed.run(settings, source, progress=lambda _: None)
    assert deleted.embedded == 0 and deleted.deleted == len(gone) and deleted.version == 3
    version, ids = _live_ids(settings)
    assert version == 3 and not ids & gone and len(ids) == len(all_chunks) - len(gone)
    assert "curriculum_v1" in deleted.dropped_collections  # keep_versions=2: v2 and v3 remain

    retriever = Retriever(settings)  # the service's view: the new version, searched by meaning
    assert retriever.refresh(force=True) and retriever.status()["version"] == 3
    hit = retriever.search("pair of scales equation", k=1).passages[0]
    assert hit.skill == "algebra.linear" and "scales" in hit.text

    full = reembed.run(settings, source, full=True, progress=lambda _: None)
    assert full.embedded == full.chunks and full.version == 4


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "tutor_cluster.pipelines.reembed", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, **kw)


def _config(tmp: Path) -> Path:
    cfg = tmp / "settings.yaml"
    cfg.write_text(f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nknowledge:\n  store: {{path: {tmp / 'qdrant'}}}\n")
    return cfg


@pytest.mark.parametrize("content, expected", [
    ('{"kind": "explanation", "id": "x", "skill": "fractions.add", "title": "T", "body": \n', "bad.jsonl:1: not valid JSON"),
    ('{"kind": "explanation", "id": "x", "skill": "fractions.add", "body": "b"}\n', "bad.jsonl:1: title: Field required"),
    ('{"kind": "explanation", "id": "x", "skill": "no.such", "title": "T", "body": "b"}\n', "bad.jsonl:1: skill: unknown skill"),
])
def test_bad_curriculum_exits_2_and_leaves_the_live_version(tmp_path: Path, content: str, expected: str) -> None:
    settings = KnowledgeSettings(store=VectorStoreConfig(path=str(tmp_path / "qdrant")))
    client = open_client(settings.store)  # a live version that must stay untouched
    cols = Collections(client, "curriculum")
    v = cols.create(4, {"embedding_model": "m"})
    cols.swap(v)
    client.close()
    source = tmp_path / "c"
    shutil.copytree(SAMPLE, source)
    (source / "bad.jsonl").write_text(content)
    proc = _cli(["--source", str(source), "--config", str(_config(tmp_path))])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], err
    assert _live_ids(settings)[0] == 1


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (["--full"], ["--source", str(tmp_path / "missing")], ["--source", str(SAMPLE), "--actors", "0"],
                 ["--source", str(SAMPLE), "--gpus-per-actor", "-1"]):
        proc = _cli(args)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, err)


@pytest.mark.drill
def test_run_killed_half_way_leaves_the_old_version_live(ray_local, tmp_path: Path) -> None:
    """Three runs of the job's command line, each a driver of its own on the module's Ray (as jobs submitted to
    a cluster are): a whole run, one SIGKILLed after its first embedded batch, and the run after it."""
    source = tmp_path / "c"
    shutil.copytree(SAMPLE, source)
    settings = KnowledgeSettings(store=VectorStoreConfig(path=str(tmp_path / "qdrant")))
    cfg = _config(tmp_path)
    address = ["--address", ray_local.get_runtime_context().gcs_address]
    started = time.monotonic()
    proc = _cli(["--source", str(source), "--config", str(cfg), *address])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    baseline_s = time.monotonic() - started  # a whole run on this machine, now: the yardstick for the waits below
    _, before = _live_ids(settings)

    big = "\n".join(json.dumps({"kind": "explanation", "id": f"bulk-{i}", "skill": "fractions.add",
                                "title": f"Note {i}", "body": f"Fractions note number {i}. " * 4})
                    for i in range(600))
    (source / "bulk.jsonl").write_text(big + "\n")
    proc = _cli(["--source", str(source), "--config", str(cfg), *address], start_new_session=True)
    deadline = time.monotonic() + 5 * baseline_s  # only needs to reach its first embedded batch
    seen = ""
    assert proc.stdout is not None
    while "embedded " not in seen:  # kill it mid-build: some batches are already in the new version
        line = proc.stdout.readline()
        assert line or proc.poll() is None, f"run ended early: {proc.poll()} {proc.stderr.read() if proc.stderr else ''}"
        seen += line
        assert time.monotonic() < deadline, f"no embedded batch within 5x a whole run ({baseline_s:.0f} s)"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert _live_ids(settings) == (1, before)  # the old version is still the live one, whole
    client = open_client(settings.store)
    try:
        assert 2 in Collections(client, "curriculum").versions()  # the half-built leftover
    finally:
        client.close()
    proc = _cli(["--source", str(source), "--config", str(cfg), *address])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert "curriculum_v2" in summary["dropped_collections"] and summary["swapped"] and summary["version"] == 2
    assert summary["copied"] == len(before) and summary["embedded"] == 600
