"""Two regions on one machine (the running service: real Ray, Serve, Redis, vLLM): eu at /, us at /us with eu's
model tiers. A learner of eu requested through us is never served from us's data; a learner of us requested
through eu is forwarded home; every replica and memory actor of a region requests that region's resource."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests.e2e.conftest import HOME_REGION, OTHER_REGION, Service, ray_token
from tests.unit.api.test_regions import every_learner_route

pytestmark = pytest.mark.integration

ADULT = {"display_name": "Oluwaseun Brackenridge", "email": "o.brackenridge@example.org", "age_band": "adult"}
MESSAGE = "my answer is 3/4, signed Brackenridge"


def _turn(learner: str, message: str = MESSAGE, **extra: str) -> dict[str, str]:
    return {"learner_id": learner, "session_id": "r1", "message": message, "exercise_id": "frac-add-1", **extra}


def _register(client: httpx.Client, prefix: str) -> str:
    r = client.post(f"{prefix}/v1/learners", json=ADULT)
    assert r.status_code == 201, r.text
    return r.json()["learner_id"]


def test_a_learner_is_served_only_by_their_home_regions_replicas_and_stores(service: Service, client: httpx.Client,
                                                                             redis_server) -> None:
    theirs, ours = _register(client, ""), _register(client, f"/{OTHER_REGION}")
    assert theirs.startswith(f"lrn_{HOME_REGION}_") and ours.startswith(f"lrn_{OTHER_REGION}_")
    assert client.post("/v1/tutor/turns", json=_turn(theirs)).status_code == 200
    # eu's learner through us: refused on every route, 0 successes
    served, refused = [], []
    for method, path, kwargs in every_learner_route(theirs):
        r = client.request(method, f"/{OTHER_REGION}{path}", **kwargs)
        if r.status_code < 400:
            served.append((method, path))
        if r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed":
            continue  # this key's role may not call the route anywhere (checked before the learner is read)
        assert r.status_code == 421 and r.json()["error"]["code"] == "wrong_region", (method, path, r.text)
        assert r.headers["x-tutor-home-region"] == HOME_REGION and r.headers["x-tutor-region"] == OTHER_REGION
        refused.append(path)
    assert served == [] and len(refused) >= len(every_learner_route(theirs)) - 2, refused
    # us's learner through eu: forwarded to us (eu forwards; us lets eu process its learners' requests)
    forwarded = client.post("/v1/tutor/turns", json=_turn(ours))
    assert forwarded.status_code == 200 and forwarded.headers["x-tutor-region"] == OTHER_REGION, forwarded.text
    assert client.get(f"/v1/learners/{ours}").json() == client.get(f"/{OTHER_REGION}/v1/learners/{ours}").json()
    # a turn that needs a model: us's router calls eu's engines (models_from), nothing else of eu
    model = client.post(f"/{OTHER_REGION}/v1/tutor/turns", json={
        "learner_id": ours, "session_id": "r2", "message": "What is a denominator?", "mode": "explain"})
    assert model.status_code == 200 and model.json()["tier"] in ("small", "core"), model.text
    # us's stores (its learner memory, vault and audit log, all on Redis) hold its own learner, nothing of eu's
    us = service.region_settings(OTHER_REGION)
    store = redis.Redis.from_url(redis_server.url)

    def us_bytes() -> bytes:
        keys = [k for prefix in (us.learner.store.key_prefix, us.privacy.vault_redis_prefix,
                                 us.privacy.audit_redis_prefix)
                for k in store.scan_iter(match=f"{prefix}:*", count=1000)]
        files = [p.read_bytes() for p in sorted(us.privacy.audit_path().parent.rglob("*")) if p.is_file()]
        return b"".join([*keys, *(store.dump(k) or b"" for k in keys), *files])

    assert ours.encode() in us_bytes()  # the control: what us serves is there
    trail = client.get(f"/{OTHER_REGION}/v1/learners/{ours}/audit")  # us's accesses, in us's log on Redis
    assert trail.status_code == 200 and len(trail.json()["records"]) >= 3, trail.text
    assert store.llen(f"{us.privacy.audit_redis_prefix}:log") >= 3
    for trace in (theirs, ADULT["email"], "Brackenridge"):
        assert trace.encode() not in us_bytes(), trace
    eu_keys = b"".join(store.scan_iter(match=f"{service.region_settings().learner.store.key_prefix}:*", count=1000))
    assert ours.encode() not in eu_keys and theirs.encode() in eu_keys
    # erasure in us (its vault on Redis): the learner's key is shredded, nothing of them stays in us's keys
    erased = client.delete(f"/{OTHER_REGION}/v1/learners/{ours}")
    assert erased.status_code == 200 and erased.json()["unlinkable"], erased.text
    assert client.get(f"/{OTHER_REGION}/v1/learners/{ours}").status_code == 404
    assert ours.encode() not in us_bytes()


def test_every_replica_and_memory_actor_requests_its_regions_resource(service: Service) -> None:
    r = httpx.get(f"{service.dashboard}/api/v0/actors", params={"detail": "true", "limit": "10000"},
                  headers={"Authorization": f"Bearer {ray_token()}"}, timeout=60)
    assert r.status_code == 200, r.text
    actors = [a for a in r.json()["data"]["result"]["result"] if a["state"] == "ALIVE"]
    placed: dict[str, list[str]] = {HOME_REGION: [], OTHER_REGION: []}
    for actor in actors:
        name = actor.get("name") or ""
        for region in placed:
            if name.startswith((f"SERVE_REPLICA::tutor-{region}#", f"learner-memory-{region}-")):
                placed[region].append(name)
                # (an engine runs in a placement group: its bundle's resources are named '<resource>_group_…')
                wants = {k.split("_group_")[0] for k in actor["required_resources"] if k.startswith("region-")}
                assert wants == {f"region-{region}"}, (name, actor["required_resources"])
    # eu runs the engines and the curriculum; us only its own gateway, edge, router and memory
    assert any("#core-" in n for n in placed[HOME_REGION]) and any("#knowledge#" in n for n in placed[HOME_REGION])
    assert not any("#core-" in n or "#knowledge#" in n for n in placed[OTHER_REGION]), placed[OTHER_REGION]
    for region, names in placed.items():
        for part in ("#gateway#", "#edge#", "#router#", "learner-memory-"):
            assert any(part in n for n in names), (region, part, names)
