"""Curriculum RAG through the public interfaces: the search endpoint, citations in model turns, and a re-embed
submitted as a real Ray Job (dashboard on loopback, token auth) while the service keeps answering."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, ray_token
from tutor_cluster.config.settings import SAMPLE_CURRICULUM

pytestmark = pytest.mark.integration


def search(client: httpx.Client, **params: object) -> httpx.Response:
    return client.get("/v1/curriculum/search", params=params)


def test_search_finds_the_right_skill_and_filters(client: httpx.Client) -> None:
    r = search(client, q="how do I add fractions with different denominators", k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] >= 1 and body["embedding_model"].endswith("all-MiniLM-L6-v2")
    top = body["passages"][0]
    assert top["skill"] == "fractions.add" and top["source"].startswith("fractions-add.md")

    r = search(client, q="common denominator", skill="algebra.linear", k=5)
    assert r.status_code == 200 and r.json()["passages"]
    assert {p["skill"] for p in r.json()["passages"]} == {"algebra.linear"}

    r = search(client, q="sumar fracciones", locale="es", k=5)
    assert {p["locale"] for p in r.json()["passages"]} == {"es"}
    r = search(client, q="fractions", grade=8, k=5)
    assert {p["grade"] for p in r.json()["passages"]} == {8}


@pytest.mark.parametrize("params, field", [
    ({"q": "   "}, "q"), ({}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 21}, "k"),
    ({"q": "x", "grade": "five"}, "grade"), ({"q": "x", "locale": "english"}, "locale"),
    ({"q": "x" * 513}, "q"),
])
def test_search_bad_input_names_the_field(client: httpx.Client, params: dict, field: str) -> None:
    r = search(client, **params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_search_needs_auth(service: Service) -> None:
    assert httpx.get(f"{service.url}/v1/curriculum/search", params={"q": "x"}).status_code == 401


def test_model_turn_cites_the_curriculum(client: httpx.Client) -> None:
    r = client.post("/v1/tutor/turns", json={
        "learner_id": "rag-1", "session_id": "s", "mode": "explain",
        "message": "Can you explain how to add fractions with different denominators?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] != "edge"
    assert body["citations"], body
    assert all(c["chunk_id"].split("#")[0] for c in body["citations"])
    assert any(c["source"].startswith("fractions-add.md") for c in body["citations"])
    assert body["latency_ms"]["retrieval"] is not None


def test_edge_turn_does_not_retrieve(client: httpx.Client) -> None:
    r = client.post("/v1/tutor/turns", json={"learner_id": "rag-2", "session_id": "s", "exercise_id": "frac-add-1",
                                             "message": "3/4"})
    assert r.status_code == 200 and r.json()["tier"] == "edge"
    assert r.json()["citations"] == [] and "retrieval" not in r.json()["latency_ms"]


def test_jobs_api_refuses_requests_without_the_token(service: Service) -> None:
    r = httpx.get(f"{service.dashboard}/api/jobs/", timeout=10)
    assert r.status_code in (401, 403), r.text
    r = httpx.get(f"{service.dashboard}/api/jobs/", headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    assert r.status_code in (401, 403), r.text
    r = httpx.get(f"{service.dashboard}/api/jobs/", headers={"Authorization": f"Bearer {ray_token()}"}, timeout=10)
    assert r.status_code == 200, r.text


def test_reembed_job_swaps_while_serving(service: Service, client: httpx.Client, tmp_path: Path) -> None:
    """A Ray Job re-embeds a changed curriculum; searches keep succeeding, see only whole versions, and the
    new version goes live once the job is done. A submission without the token is refused."""
    before = search(client, q="common denominator", k=1).json()["version"]
    source = tmp_path / "curriculum"
    shutil.copytree(SAMPLE_CURRICULUM, source)
    doc = source / "fractions-simplify.md"
    doc.write_text(doc.read_text() + "\n# Cross-cancelling\n\nA brand-new section about cross-cancelling.\n")

    refused = service.submit_reembed(source, token="wrong-token")
    assert refused.returncode != 0
    assert search(client, q="common denominator", k=1).json()["version"] == before

    seen: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as c:
            while not stop.is_set():
                r = c.get("/v1/curriculum/search", params={"q": "cross-cancelling", "k": 1})
                seen.append((r.status_code, r.json().get("version")))
                time.sleep(0.05)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        done = service.submit_reembed(source, token=ray_token())
    finally:
        time.sleep(0.5)
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"summary"')))["summary"]
    assert summary["swapped"] and summary["version"] == before + 1
    assert 0 < summary["embedded"] < summary["chunks"] and summary["copied"] > 0
    assert seen and all(status == 200 for status, _ in seen), seen
    versions = [v for _, v in seen]
    assert versions == sorted(versions) and set(versions) <= {before, before + 1}
    r = search(client, q="cross-cancelling", k=1)
    assert r.json()["version"] == before + 1
    assert service.stats()["knowledge"]["version"] == before + 1
    assert "cross-cancelling" in r.json()["passages"][0]["text"].lower()
