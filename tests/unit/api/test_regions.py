"""Regions through HTTP: three regions' real FastAPI apps and middleware in-process, each with its own vault,
learner memory, relations and audit log on real SQLite files (the real edge; no model is called: the turns are
answers the edge settles). Their gateways reach each other over an in-process ASGI transport instead of the
network — the one stand-in. eu forwards requests for other regions' learners; us refuses them and lets eu
process its learners' requests; ap forwards but nobody lets it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.stand_ins import TEST_KEKS, TEST_PSEUDONYMS, InProcess, InProcessMemory, RecordingMetrics
from tests.unit.turns.test_rights import MESSAGE, PII, TODAY, disk_bytes
from tutor_cluster.api.app import build_fastapi, build_services
from tutor_cluster.api.auth import hash_key
from tutor_cluster.api.forwarding import FORWARDED_FROM, RegionForwarder
from tutor_cluster.config.auth import ApiKey
from tutor_cluster.config.settings import Settings, load_settings
from tutor_cluster.edge.deployment import EdgeTier
from tutor_cluster.routing.router import RouterCore

ADULT = {**PII, "birth_date": "1990-03-04"}  # of consent age: tutoring from registration
REGIONS = {"eu": {"foreign_learners": "forward", "url": "http://eu.region"},
           "us": {"foreign_learners": "refuse", "processing_regions": ["eu"], "url": "http://us.region"},
           "ap": {"foreign_learners": "forward", "url": "http://ap.region"}}


class Network(httpx.AsyncBaseTransport):
    """Each region's gateway by its URL's host (an unknown or removed host: the connection fails)."""

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.host)
        if app is None:
            raise httpx.ConnectError(f"{request.url.host} unreachable", request=request)
        return await httpx.ASGITransport(app=app).handle_async_request(request)


def deployment(tmp: Path) -> Settings:
    raw = load_settings().model_dump()
    keys = [ApiKey(id="adm", sha256=hash_key("tc-adm"), tenant="acme", role="institution_admin", scopes=["tutor"]),
            ApiKey(id="other", sha256=hash_key("tc-other"), tenant="globex", role="institution_admin",
                   scopes=["tutor", "chat"]),
            ApiKey(id="app", sha256=hash_key("tc-app"), tenant="acme", role="service", scopes=["tutor", "chat"]),
            ApiKey(id="gdn", sha256=hash_key("tc-gdn"), tenant="acme", role="guardian", scopes=["tutor"])]
    raw["auth"] = {"api_keys": [k.model_dump() for k in keys]}
    raw["learner"]["store"] = {"backend": "sqlite", "sqlite_path": str(tmp / "learners.db")}
    raw["telemetry"]["events"].update(path=str(tmp / "events"), max_buffer=1)
    raw["privacy"].update(audit_sqlite_path=str(tmp / "audit.db"), vault_sqlite_path=str(tmp / "vault.db"))
    raw["knowledge"]["enabled"] = False
    raw["regions"] = REGIONS
    return Settings.model_validate(raw)


@pytest.fixture()
def network(tmp_path: Path) -> Network:
    net = Network()
    settings = deployment(tmp_path)
    for name in settings.region_names():
        mine = settings.for_region(name)
        services = build_services(
            mine, InProcess(EdgeTier.func_or_class(mine.edge, mine.exercises)),
            InProcess(RouterCore(mine.routing, mine.catalogue, {})), InProcessMemory(mine), None,
            metrics=RecordingMetrics(), pseudonyms=TEST_PSEUDONYMS, keks=TEST_KEKS, clock=lambda: TODAY,
            forwarder=RegionForwarder(mine, transport=net))
        net.apps[f"{name}.region"] = build_fastapi(services)
    return net


def call(net: Network, region: str, method: str, path: str, key: str = "adm", **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=net, base_url=f"http://{region}.region") as client:
            headers = {"Authorization": f"Bearer tc-{key}", **kwargs.pop("headers", {})}
            return await client.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


def register(net: Network, region: str, **extra: Any) -> str:
    r = call(net, region, "POST", "/v1/learners", json={**ADULT, **extra})
    assert r.status_code == 201, r.text
    return r.json()["learner_id"]


def turn(learner: str, message: str = MESSAGE) -> dict[str, str]:
    return {"learner_id": learner, "session_id": "s1", "message": message, "exercise_id": "frac-add-1"}


def every_learner_route(learner: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [("POST", "/v1/tutor/turns", {"json": turn(learner)}),
            ("POST", "/v1/tutor/turns", {"json": {**turn(learner), "stream": True}}),
            ("GET", f"/v1/learners/{learner}", {}),
            ("PATCH", f"/v1/learners/{learner}/preferences", {"json": {"language": "es"}}),
            ("GET", f"/v1/learners/{learner}/next-exercise", {}),
            ("GET", f"/v1/learners/{learner}/consent", {}),
            ("PUT", f"/v1/learners/{learner}/consent", {"json": {"scopes": {"analytics": False},
                                                                  "method": "self"}}),
            ("GET", f"/v1/learners/{learner}/export", {}),
            ("GET", f"/v1/learners/{learner}/audit", {}),
            ("PUT", f"/v1/classes/c1/learners/{learner}", {}),
            ("PUT", f"/v1/guardians/gdn/learners/{learner}", {}),
            ("DELETE", f"/v1/learners/{learner}", {})]


def region_bytes(tmp: Path, region: str) -> bytes:
    """Every byte region ``region`` wrote: its vault, memory, relations, audit log, and its event partitions."""
    events = [p for p in (tmp / "events").rglob("*") if f"region={region}" in str(p)] if (tmp / "events").exists() else []
    return disk_bytes(tmp / "regions" / region) + b"".join(p.read_bytes() for p in events if p.is_file())


def test_a_learner_of_another_region_is_refused_on_every_route_and_leaves_nothing_there(
        network: Network, tmp_path: Path) -> None:
    learner = register(network, "eu")
    assert learner.startswith("lrn_eu_")
    assert call(network, "eu", "POST", "/v1/tutor/turns", json=turn(learner)).status_code == 200
    served = []
    for method, path, kwargs in every_learner_route(learner):
        r = call(network, "us", method, path, **kwargs)
        if r.status_code < 400:
            served.append((method, path))
        assert r.status_code == 421, (method, path, r.text)
        error = r.json()["error"]
        assert error["code"] == "wrong_region" and error["field"] == "learner_id", error
        assert "region 'eu'" in error["message"] and "(http://eu.region)" in error["message"], error
        assert r.headers["x-tutor-home-region"] == "eu" and r.headers["x-tutor-region"] == "us"
    chat = call(network, "us", "POST", "/v1/chat/completions", key="app", json={
        "model": "tutor-small", "user": learner, "messages": [{"role": "user", "content": MESSAGE}]})
    assert chat.status_code == 421 and chat.json()["error"]["param"] == "user", chat.text
    # a guardian (whose links live in the home region) is told where to go too, not 404 from here
    for method, path, kwargs in every_learner_route(learner)[2:]:
        r = call(network, "us", method, path, key="gdn", **kwargs)
        assert r.status_code in (421, 403), (method, path, r.text)  # 403: a route this role may call nowhere
        if r.status_code == 403:
            assert r.json()["error"]["code"] == "role_not_allowed", r.text
    assert call(network, "us", "DELETE", f"/v1/learners/{learner}", key="gdn").status_code == 421
    elsewhere = call(network, "us", "POST", "/v1/learners", json={**ADULT, "home_region": "eu"})
    assert elsewhere.status_code == 421 and elsewhere.json()["error"]["field"] == "home_region", elsewhere.text
    assert served == []  # 0 successes through the wrong region
    own = register(network, "us")  # the control: what us serves does show in its files
    assert call(network, "us", "POST", "/v1/tutor/turns", json=turn(own, "0.75")).status_code == 200
    left = region_bytes(tmp_path, "us")
    assert own.encode() in left
    for secret in (learner, ADULT["email"], ADULT["display_name"], "Bartholomew"):
        assert secret.encode() not in left, secret
    assert call(network, "eu", "GET", f"/v1/learners/{learner}").status_code == 200  # still theirs, at home


def test_forwarding_serves_the_learner_at_home_with_the_callers_own_credentials(
        network: Network, tmp_path: Path) -> None:
    learner = register(network, "us")
    assert learner.startswith("lrn_us_")
    r = call(network, "eu", "POST", "/v1/tutor/turns", json=turn(learner))
    assert r.status_code == 200 and r.headers["x-tutor-region"] == "us", r.text
    streamed = call(network, "eu", "POST", "/v1/tutor/turns", json={**turn(learner), "stream": True, "turn_id": "t2"})
    assert streamed.status_code == 200 and "event: done" in streamed.text
    direct, forwarded = (call(network, region, "GET", f"/v1/learners/{learner}").json() for region in ("us", "eu"))
    assert forwarded == direct and len(direct["recent"]) == 2, direct
    export = call(network, "eu", "GET", f"/v1/learners/{learner}/export")
    assert export.status_code == 200 and export.json()["registration"]["profile"]["email"] == ADULT["email"]
    # registering a learner of us through eu: their data goes into us's vault
    via_eu = call(network, "eu", "POST", "/v1/learners", json={**ADULT, "email": "ines.v@example.org",
                                                                "home_region": "us"})
    assert via_eu.status_code == 201 and via_eu.json()["learner_id"].startswith("lrn_us_"), via_eu.text
    assert call(network, "us", "GET", f"/v1/learners/{via_eu.json()['learner_id']}/export").status_code == 200
    # the home region decides who may: another tenant's caller is as unknown there as anywhere
    assert call(network, "eu", "GET", f"/v1/learners/{learner}", key="other").status_code == 404
    own = register(network, "eu")  # the control: what eu serves does show in its files
    assert call(network, "eu", "POST", "/v1/tutor/turns", json=turn(own, "0.75")).status_code == 200
    left = region_bytes(tmp_path, "eu")
    assert own.encode() in left
    for secret in (learner, ADULT["email"], "ines.v@example.org", "Bartholomew"):
        assert secret.encode() not in left, secret


def test_forwarding_needs_the_home_regions_leave_and_happens_once(network: Network) -> None:
    learner = register(network, "us")
    r = call(network, "ap", "GET", f"/v1/learners/{learner}")  # ap forwards, but us does not let it
    assert r.status_code == 421 and "does not let region 'ap'" in r.json()["error"]["message"], r.text
    again = call(network, "eu", "GET", f"/v1/learners/{learner}", headers={FORWARDED_FROM: "ap"})
    assert again.status_code == 421 and "forwarded here already" in again.json()["error"]["message"]
    unknown = call(network, "eu", "GET", "/v1/learners/lrn_mars_aaaabbbbccccddddeeeeffffgggg")
    assert unknown.status_code == 404, unknown.text
    del network.apps["us.region"]  # the home region is down: nothing is served in its place
    down = call(network, "eu", "POST", "/v1/tutor/turns", json=turn(learner))
    assert down.status_code == 503 and down.json()["error"]["code"] == "region_unavailable", down.text
    assert down.headers["retry-after"] == "2"
