"""A learner's data rights through HTTP (the real FastAPI app and middleware in-process; the real edge; learner
memory, relations, vault and audit log on real SQLite files; analytics events to real Parquet; no model is called:
the turns are answers the edge settles): registration, export, erasure — and what is left on disk after it."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.stand_ins import TEST_KEKS, TEST_PSEUDONYMS, InProcess, InProcessMemory, RecordingMetrics
from tutor_cluster.api.app import Services, build_fastapi, build_services
from tutor_cluster.api.auth import hash_key
from tutor_cluster.config.auth import ApiKey
from tutor_cluster.config.settings import Settings, load_settings
from tutor_cluster.edge.deployment import EdgeTier
from tutor_cluster.learner.context import LearnerUpdate, TurnSummary
from tutor_cluster.routing.router import RouterCore
from tutor_cluster.telemetry.events import read_events
from tutor_cluster.vault.crypto import KeyEncryptionKeys
from tutor_cluster.vault.store import Vault

PII = {"display_name": "Philippa Quenby-Marchetti", "email": "pquenby.marchetti@example.net",
       "guardian_email": "g.quenby.parent@example.net", "birth_date": "2014-05-17"}
MESSAGE = "I think 3/4 because my iguana Bartholomew told me"
ROOT = Path(__file__).resolve().parents[3]
#: "Today" for the services in these tests, so ages do not change as the calendar does.
TODAY = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.timezone.utc).timestamp()


def settings_for(tmp: Path, registration: str = "optional") -> Settings:
    raw = load_settings().model_dump()
    keys = [ApiKey(id="svc", sha256=hash_key("tc-svc"), tenant="acme", role="service", scopes=["tutor"]),
            ApiKey(id="gdn", sha256=hash_key("tc-gdn"), tenant="acme", role="guardian", scopes=["tutor"]),
            ApiKey(id="adm", sha256=hash_key("tc-adm"), tenant="acme", role="institution_admin", scopes=["tutor"]),
            ApiKey(id="other", sha256=hash_key("tc-other"), tenant="globex", role="institution_admin",
                   scopes=["tutor"])]
    raw["auth"] = {"api_keys": [k.model_dump() for k in keys]}
    raw["learner"]["store"] = {"backend": "sqlite", "sqlite_path": str(tmp / "learners.db")}
    raw["telemetry"]["events"].update(path=str(tmp / "events"), max_buffer=1)
    raw["privacy"].update(audit_sqlite_path=str(tmp / "audit.db"), vault_sqlite_path=str(tmp / "vault.db"),
                          registration=registration)
    return Settings.model_validate(raw)


def services_for(settings: Settings, engine: Any = None, metrics: RecordingMetrics | None = None) -> Services:
    """``engine``: a stand-in for every catalogue engine (none: only turns the edge settles can be answered)."""
    engines = {name: engine for name in settings.catalogue.engines} if engine is not None else {}
    return build_services(settings, InProcess(EdgeTier.func_or_class(settings.edge, settings.exercises)),
                          InProcess(RouterCore(settings.routing, settings.catalogue, engines)),
                          InProcessMemory(settings), None, metrics=metrics or RecordingMetrics(),
                          pseudonyms=TEST_PSEUDONYMS, keks=TEST_KEKS, clock=lambda: TODAY)


def auth(who: str = "svc") -> dict[str, str]:
    return {"Authorization": f"Bearer tc-{who}"}


def turn(learner: str, message: str = MESSAGE) -> dict[str, str]:
    return {"learner_id": learner, "session_id": "s1", "message": message, "exercise_id": "frac-add-1"}


def register(client: TestClient, body: dict[str, Any] | None = None, **headers: str) -> str:
    r = client.post("/v1/learners", json=body or PII, headers={**auth("adm"), **headers})
    assert r.status_code in (200, 201), r.text
    return r.json()["learner_id"]


def consent(client: TestClient, learner: str, scopes: dict[str, bool] | None = None) -> dict[str, Any]:
    """The guardian (linked first) consents for the child, verified by a signed form."""
    assert client.put(f"/v1/guardians/gdn/learners/{learner}", headers=auth("adm")).status_code == 200
    r = client.put(f"/v1/learners/{learner}/consent", headers=auth("gdn"), json={
        "scopes": scopes or {"tutoring": True, "analytics": True}, "method": "signed_form"})
    assert r.status_code == 200, r.text
    return r.json()


def events_of(tmp: Path, pseudonym: str) -> int:
    path = tmp / "events"
    return int((read_events(path)["learner"] == pseudonym).sum()) if path.exists() and any(path.rglob("*.parquet")) else 0


def disk_bytes(tmp: Path) -> bytes:
    """Every byte the service left under ``tmp``: stores, write-ahead logs, Parquet files."""
    return b"".join(p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file())


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    with TestClient(build_fastapi(services_for(settings_for(tmp_path)))) as c:
        yield c


@pytest.mark.parametrize(("change", "field"), [
    ({"birth_date": None}, "birth_date"), ({"email": "not-an-email"}, "email"), ({"nickname": "x"}, "nickname"),
    ({"birth_date": "2999-01-01"}, "birth_date"), ({"home_region": "mars-1"}, "home_region"),
    ({"age_band": "adult"}, "age_band"), ({"display_name": "a\u0000b"}, "display_name"),
])
def test_a_bad_registration_is_a_422_naming_the_field_and_stores_nothing(client: TestClient, tmp_path: Path,
                                                                         change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**PII, **change}.items() if v is not None}
    r = client.post("/v1/learners", json=body, headers=auth("adm"))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert field in (error.get("field") or "") + error["message"], error
    assert PII["email"].encode() not in disk_bytes(tmp_path) and Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures() == []


def test_registration_gives_an_opaque_id_retries_are_one_learner_and_only_managers_register(
        client: TestClient, tmp_path: Path) -> None:
    first = client.post("/v1/learners", json=PII, headers={**auth("adm"), "Idempotency-Key": "reg-1"})
    again = client.post("/v1/learners", json=PII, headers={**auth("adm"), "Idempotency-Key": "reg-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and first.json()["age_band"] == "under_13"  # born 2014, today 2026
    assert "quenby" not in first.json()["learner_id"].lower()
    clash = client.post("/v1/learners", json={**PII, "display_name": "Other"},
                        headers={**auth("adm"), "Idempotency-Key": "reg-1"})
    assert clash.status_code == 422 and clash.json()["error"]["field"] == "Idempotency-Key"
    assert client.post("/v1/learners", json=PII, headers=auth("gdn")).status_code == 403
    on_disk = disk_bytes(tmp_path)  # the vault, the audit log, …: nothing of the request in clear (nor its retry)
    assert [v for v in PII.values() if v.encode() in on_disk] == []


def test_export_holds_everything_about_the_learner_and_nothing_of_another(client: TestClient) -> None:
    mine = register(client)
    theirs = register(client, {"display_name": "Theodora Vex", "email": "t.vex@example.com", "age_band": "adult"})
    consent(client, mine)
    for learner, message in ((mine, MESSAGE), (theirs, "2/6 says Theodora")):
        assert client.post("/v1/tutor/turns", json=turn(learner, message), headers=auth()).status_code == 200
    assert client.patch(f"/v1/learners/{mine}/preferences", json={"pace": "slow"}, headers=auth()).status_code == 200
    r = client.get(f"/v1/learners/{mine}/export", headers=auth("adm"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["format"] == "tutor-cluster.learner-export/1" and doc["learner_id"] == mine
    profile = doc["registration"]["profile"]
    assert {k: profile[k] for k in PII} == PII and profile["age_band"] == "under_13"
    assert doc["memory"]["preferences"] == {"pace": "slow"}
    assert [t["summary"] for t in doc["memory"]["recent"]] == [MESSAGE]
    assert {a["action"] for a in doc["audit"]} >= {"register", "read+write", "write"}
    assert doc["consent"]["minor"] and doc["consent"]["scopes"] == {
        "tutoring": True, "analytics": True, "model_improvement": False}
    assert [(c["scope"], c["actor"], c["method"]) for c in doc["consent"]["records"]] == [
        ("tutoring", "gdn", "signed_form"), ("analytics", "gdn", "signed_form")]
    assert {a["subject"] for a in doc["audit"]} == {doc["pseudonym"]}
    for foreign in (theirs, "Theodora", "t.vex@example.com"):
        assert foreign not in r.text
    assert client.get(f"/v1/learners/{mine}/export", headers=auth("other")).status_code == 404  # other tenant
    assert client.get(f"/v1/learners/{theirs}/export", headers=auth("gdn")).status_code == 404  # not their child
    trail = client.get(f"/v1/learners/{mine}/audit", headers=auth("adm")).json()["records"]
    assert trail[0]["action"] == "export"  # the export itself is a recorded disclosure


def test_erasure_leaves_no_trace_on_disk_and_unlinks_pseudonymous_rows(client: TestClient, tmp_path: Path) -> None:
    learner = register(client)
    bystander = register(client, {"display_name": "Kept Person", "age_band": "adult"})
    consent(client, learner)
    assert client.put(f"/v1/classes/c7/learners/{learner}", headers=auth("adm")).status_code == 200
    for i in range(3):
        body = {**turn(learner), "turn_id": f"t{i}"}
        assert client.post("/v1/tutor/turns", json=body, headers=auth()).status_code == 200
    assert client.post("/v1/tutor/turns", json=turn(bystander, "1/2"), headers=auth()).status_code == 200
    pseudonym = client.get(f"/v1/learners/{learner}/export", headers=auth("gdn")).json()["pseudonym"]
    before = disk_bytes(tmp_path)
    assert learner.encode() in before and pseudonym.encode() in before and MESSAGE.encode() in before

    r = client.delete(f"/v1/learners/{learner}", headers=auth("gdn"))  # a guardian exercises the right
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["status"] == "completed" and receipt["unlinkable"]
    assert receipt["erased"] == ["relations", "vault", "memory"]

    after = disk_bytes(tmp_path)
    for trace in (learner, *PII.values(), MESSAGE, "Bartholomew"):
        assert trace.encode() not in after, f"{trace!r} is still on disk"
    # the pseudonymous rows stay (analytics, audit) but nothing can join them to the learner any more
    events = read_events(tmp_path / "events")
    assert pseudonym in set(events["learner"]) and pseudonym.encode() in after
    assert pseudonym not in {TEST_PSEUDONYMS.pseudonym("acme", learner, version=v) for v in TEST_PSEUDONYMS.versions}
    for path in (f"/v1/learners/{learner}", f"/v1/learners/{learner}/export"):
        assert client.get(path, headers=auth("adm")).status_code == 404
    assert client.post("/v1/tutor/turns", json=turn(learner), headers=auth()).status_code == 404  # never comes back
    assert client.get("/v1/guardians/gdn", headers=auth("adm")).json()["learners"] == []
    repeat = client.delete(f"/v1/learners/{learner}", headers=auth("adm"))
    assert repeat.status_code == 200 and repeat.json()["receipt_id"] == receipt["receipt_id"]
    kept = client.get(f"/v1/learners/{bystander}/export", headers=auth("adm")).json()
    assert kept["registration"]["profile"]["display_name"] == "Kept Person" and kept["memory"]["recent"]
    erase_record = client.get("/v1/learners/" + bystander + "/audit", headers=auth("adm")).json()["records"]
    assert all(rec["subject"] != pseudonym for rec in erase_record)


def test_with_registration_required_only_registered_learners_exist(tmp_path: Path) -> None:
    with TestClient(build_fastapi(services_for(settings_for(tmp_path, "required")))) as client:
        refused = client.post("/v1/tutor/turns", json=turn("pquenby@example.net"), headers=auth())
        assert refused.status_code == 404 and refused.json()["error"]["field"] == "learner_id"
        learner = register(client, {**PII, "birth_date": "2000-01-01"})
        assert client.post("/v1/tutor/turns", json=turn(learner), headers=auth()).status_code == 200
        assert b"pquenby@example.net" not in disk_bytes(tmp_path)


_CRASH = """
import os, signal, sys, asyncio
sys.path.insert(0, {root!r})
from pathlib import Path
from fastapi.testclient import TestClient
from tests.unit.turns.test_rights import settings_for, services_for, register, turn, auth, consent
from tutor_cluster.api.app import build_fastapi
from tutor_cluster.identity import Principal
from tutor_cluster.turns.rights import LearnerRights

tmp = Path({tmp!r})
services = services_for(settings_for(tmp))
with TestClient(build_fastapi(services)) as client:
    learner = register(client)
    consent(client, learner)
    assert client.post("/v1/tutor/turns", json=turn(learner), headers=auth()).status_code == 200
    assert client.put(f"/v1/classes/c7/learners/{{learner}}", headers=auth("adm")).status_code == 200
print(learner, flush=True)

def die(step):
    if step == {step!r}:
        os.kill(os.getpid(), signal.SIGKILL)

rights = LearnerRights(services.learners, services.learners.vault, services.relations, after_step=die)
admin = Principal(key_id="adm", tenant="acme", role="institution_admin", scopes=frozenset({{"tutor"}}))
asyncio.run(rights.erase(admin, learner))
print("not killed", flush=True)
"""


@pytest.mark.parametrize("step", ["blocked", "relations", "audit", "vault", "memory"])
def test_an_erasure_killed_half_way_completes_when_the_service_restarts(tmp_path: Path, step: str) -> None:
    """SIGKILL right after a step was recorded; a fresh service over the same files finishes the job at start
    (no request needed), and a repeat DELETE returns the receipt."""
    script = _CRASH.format(root=str(ROOT), tmp=str(tmp_path), step=step)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    learner = proc.stdout.split()[0]
    assert len(Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures()) == 1
    with TestClient(build_fastapi(services_for(settings_for(tmp_path)))) as client:
        deadline = time.monotonic() + 60
        while Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures() == []
        r = client.delete(f"/v1/learners/{learner}", headers=auth("adm"))
        assert r.status_code == 200 and r.json()["erased"] == ["relations", "vault", "memory"], r.text
        assert client.get(f"/v1/learners/{learner}", headers=auth("adm")).status_code == 404
        assert client.get("/v1/classes/c7", headers=auth("adm")).json()["learners"] == []
    after = disk_bytes(tmp_path)
    for trace in (learner, *PII.values(), MESSAGE):
        assert trace.encode() not in after, f"{trace!r} is still on disk"


def test_a_learner_inactive_past_vault_retention_is_erased_and_an_active_one_is_kept(tmp_path: Path) -> None:
    """privacy.retention.vault_days: the sweep blocks a registered learner with no turn for that long and begins
    their erasure; the gateway finishes it by itself (no request) — the same erasure as DELETE, receipt
    'retention', audited; a learner whose later turn was recorded is kept."""
    import base64

    from tutor_cluster.pipelines.retention import sweep

    day = 86400.0
    keys_file, kek_file = tmp_path / "pseudonym-keys", tmp_path / "kek"  # the sweep reads the same secrets
    keys_file.write_text(f"t1:{base64.b64encode(TEST_PSEUDONYMS.secret('t1')).decode()}\n")
    kek_file.write_text(f"v1:{base64.b64encode(TEST_KEKS.secret('v1')).decode()}\n")
    raw = settings_for(tmp_path).model_dump()
    raw["privacy"].update(pseudonym_keys_file=str(keys_file), vault_kek_file=str(kek_file),
                          erasure_resume_interval_s=0.05)
    raw["server"]["request_timeout_s"] = 1  # a job is resumed once older than a request may take
    raw["privacy"]["retention"]["vault_days"] = 30
    settings = Settings.model_validate(raw)
    now = [time.time()]
    services = build_services(settings, InProcess(EdgeTier.func_or_class(settings.edge, settings.exercises)),
                              InProcess(RouterCore(settings.routing, settings.catalogue, {})),
                              InProcessMemory(settings), None, metrics=RecordingMetrics(),
                              pseudonyms=TEST_PSEUDONYMS, keks=TEST_KEKS, clock=lambda: now[0])
    start = now[0]
    with TestClient(build_fastapi(services)) as client:
        idle = register(client, {**PII, "birth_date": "2000-01-01"})
        busy = register(client, {"display_name": "Kept Person", "age_band": "adult"})
        for learner, said in ((idle, MESSAGE), (busy, "1/2")):
            assert client.post("/v1/tutor/turns", json=turn(learner, said), headers=auth()).status_code == 200
        assert client.put(f"/v1/classes/c7/learners/{idle}", headers=auth("adm")).status_code == 200
        now[0] = start + 20 * day  # only `busy` comes back
        assert client.post("/v1/tutor/turns", json=turn(busy, "1/2"), headers=auth()).status_code == 200

        assert sweep(settings, now=start + 10 * day)["vault_learners_expired"] == 0  # nobody idle 30 days yet
        counts = sweep(settings, now=start + 35 * day)
        assert counts["vault_learners_expired"] == 1, counts
        assert client.get(f"/v1/learners/{idle}", headers=auth("adm")).status_code == 404  # blocked at once
        deadline = time.monotonic() + 60  # the gateway finishes the job on its own
        while Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Vault(tmp_path / "vault.db", TEST_KEKS).pending_erasures() == []
        receipt = client.delete(f"/v1/learners/{idle}", headers=auth("adm"))
        assert receipt.status_code == 200, receipt.text
        assert receipt.json()["reason"] == "retention" and receipt.json()["unlinkable"]
        assert receipt.json()["erased"] == ["relations", "vault", "memory"]
        assert client.get("/v1/classes/c7", headers=auth("adm")).json()["learners"] == []
        assert client.get(f"/v1/learners/{busy}", headers=auth("adm")).status_code == 200
        assert sweep(settings, now=start + 36 * day)["vault_learners_expired"] == 0  # done; busy still active
    after = disk_bytes(tmp_path)
    for trace in (idle, *PII.values(), MESSAGE):
        assert trace.encode() not in after, f"{trace!r} is still on disk"
    assert b"retention-sweep" in after and busy.encode() in after  # the erasure is audited; the control is kept


def test_resuming_waits_out_in_flight_turns_takes_one_job_per_replica_and_survives_a_failing_job(
        tmp_path: Path) -> None:
    """The gateway's resume rounds: a job younger than a turn may take is left (its learner's last turn may be in
    flight), an older one is finished by the one replica that claims it, and a job that fails releases its claim
    without holding up the others."""
    import asyncio

    from tutor_cluster.turns.rights import expire_learner

    settings = settings_for(tmp_path)
    services, other = services_for(settings), services_for(settings)  # two gateway replicas
    vault = services.learners.vault
    learners = [vault.register("acme", "local", {"display_name": f"Idle {i}"})[0] for i in range(3)]
    for learner in learners:
        assert expire_learner(vault, TEST_PSEUDONYMS, "acme", learner, time.time() + 1)
    assert len(vault.pending_erasures()) == 3
    rights = services.rights
    assert asyncio.run(rights.resume_pending(time.time() - 3600)) == 0  # too young: a turn may be in flight
    assert asyncio.run(rights.resume_pending(time.time() - 3600, at_start=True)) == 0  # the sweep's: even at start
    job = vault.pending_erasures()[0]
    assert other.learners.vault.claim(job, 60)  # another replica is on this one
    run, failing = rights._run, learners[1]

    async def fail_one(job, principal):  # noqa: ANN001, ANN202
        if job.learner_id == failing:
            raise ConnectionError("memory store gone")
        return await run(job, principal)

    rights._run = fail_one
    assert asyncio.run(rights.resume_pending(time.time() + 1)) == 1  # the claimed one skipped, the failing one too
    left = {j.learner_id for j in vault.pending_erasures()}
    assert left == {job.learner_id, failing}
    rights._run = run
    assert asyncio.run(rights.resume_pending(time.time() + 1)) == 1  # the failing one's claim was released
    assert {j.learner_id for j in vault.pending_erasures()} == {job.learner_id}


def test_a_child_without_a_guardians_consent_leaves_nothing_behind(client: TestClient, tmp_path: Path) -> None:
    """COPPA / GDPR Art. 8: under the consent age nothing is stored, tutored or recorded until a guardian
    consents; each scope then governs exactly its use, and a revocation stops it."""
    child = register(client)
    r = client.post("/v1/learners", json={**PII, "display_name": "Twin"}, headers=auth("adm"))
    assert r.json()["consent_required"] and r.json()["age_band"] == "under_13"
    for i in range(3):
        refused = client.post("/v1/tutor/turns", json={**turn(child), "turn_id": f"c{i}"}, headers=auth())
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "consent_required", refused.text
    assert client.patch(f"/v1/learners/{child}/preferences", json={"pace": "slow"}, headers=auth()).status_code == 403
    pseudonym = client.get(f"/v1/learners/{child}/export", headers=auth("adm")).json()["pseudonym"]
    on_disk = disk_bytes(tmp_path)
    assert MESSAGE.encode() not in on_disk and child.encode() not in (tmp_path / "learners.db").read_bytes()
    assert events_of(tmp_path, pseudonym) == 0
    assert client.get(f"/v1/learners/{child}", headers=auth("adm")).status_code == 404  # no learner state

    assert client.put(f"/v1/guardians/gdn/learners/{child}", headers=auth("adm")).status_code == 200
    unverified = client.put(f"/v1/learners/{child}/consent", json={"scopes": {"tutoring": True}}, headers=auth("gdn"))
    assert unverified.status_code == 422 and unverified.json()["error"]["field"] == "method"
    view = consent(client, child, {"tutoring": True})
    assert view["scopes"] == {"tutoring": True, "analytics": False, "model_improvement": False}
    assert client.post("/v1/tutor/turns", json=turn(child), headers=auth()).status_code == 200
    assert events_of(tmp_path, pseudonym) == 0  # tutoring, but no analytics consent: no event
    consent(client, child, {"analytics": True})
    assert client.post("/v1/tutor/turns", json={**turn(child), "turn_id": "a1"}, headers=auth()).status_code == 200
    assert events_of(tmp_path, pseudonym) == 1
    consent(client, child, {"analytics": False})  # revoked: the next turns are tutored, not recorded
    assert client.post("/v1/tutor/turns", json={**turn(child), "turn_id": "a2"}, headers=auth()).status_code == 200
    assert events_of(tmp_path, pseudonym) == 1
    history = client.get(f"/v1/learners/{child}/consent", headers=auth("adm")).json()["records"]
    assert [(c["scope"], c["granted"]) for c in history] == [("tutoring", True), ("analytics", True),
                                                             ("analytics", False)]
    assert all(c["actor"] == "gdn" and c["method"] == "signed_form" for c in history)


def test_an_older_learner_is_tutored_from_registration_and_decides_their_own_scopes(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    services = services_for(settings)
    with TestClient(build_fastapi(services)) as client:
        r = client.post("/v1/learners", json={"display_name": "Teen", "age_band": "13_15"}, headers=auth("adm"))
        teen = r.json()["learner_id"]
        assert r.status_code == 201 and not r.json()["consent_required"]
        assert client.post("/v1/tutor/turns", json=turn(teen), headers=auth()).status_code == 200
        view = client.get(f"/v1/learners/{teen}/consent", headers=auth("svc")).json()
        assert view == {"minor": False, "records": [],
                        "scopes": {"tutoring": True, "analytics": True, "model_improvement": False}}
        assert client.put(f"/v1/guardians/gdn/learners/{teen}", headers=auth("adm")).status_code == 200
        for who, method in (("adm", "school_authorization"), ("gdn", "signed_form")):  # only the teen decides
            other = client.put(f"/v1/learners/{teen}/consent", json={"scopes": {"analytics": False},
                                                                     "method": method}, headers=auth(who))
            assert other.status_code == 403 and other.json()["error"]["code"] == "learner_decides", other.text
        child = register(client)  # under the consent age: the school may authorise tutoring, nothing more
        school = client.put(f"/v1/learners/{child}/consent", json={"scopes": {"tutoring": True, "analytics": True},
                                                                   "method": "school_authorization"},
                            headers=auth("adm"))
        assert school.status_code == 422 and school.json()["error"]["field"] == "scopes"
        school = client.put(f"/v1/learners/{child}/consent", json={"scopes": {"tutoring": True}},
                            headers=auth("adm"))
        assert school.status_code == 422 and school.json()["error"]["field"] == "method"
        school = client.put(f"/v1/learners/{child}/consent", json={"scopes": {"tutoring": True},
                                                                   "method": "school_authorization"},
                            headers=auth("adm"))
        assert school.status_code == 200 and school.json()["scopes"]["tutoring"] is True


@pytest.mark.parametrize(("birth", "band", "minor"), [
    ("2014-05-17", None, True), ("2013-12-01", None, False), ("2013-12-02", None, True), (None, "under_13", True),
    (None, "13_15", False), ("2012-02-29", None, False),
])
def test_who_needs_a_guardians_consent_is_decided_by_age_on_the_day(client: TestClient, birth: str | None,
                                                                    band: str | None, minor: bool) -> None:
    body = {"display_name": "X", **({"birth_date": birth} if birth else {}), **({"age_band": band} if band else {})}
    r = client.post("/v1/learners", json=body, headers=auth("adm"))
    assert r.status_code == 201 and r.json()["consent_required"] is minor, (body, r.text)


def test_a_late_write_after_an_erasure_is_cleared_by_a_repeat_delete(tmp_path: Path) -> None:
    """A turn already past its checks when the erasure ran can write the learner's memory once more; the
    documented remedy — DELETE again — clears it and returns the same receipt."""
    services = services_for(settings_for(tmp_path))
    with TestClient(build_fastapi(services)) as client:
        learner = register(client, {"display_name": "Late Writer", "age_band": "adult"})
        assert client.post("/v1/tutor/turns", json=turn(learner), headers=auth()).status_code == 200
        first = client.delete(f"/v1/learners/{learner}", headers=auth("adm")).json()
        memory = services.learners._memory  # the late write, as the in-flight turn would make it
        memory.actor.apply(f"acme/{learner}", LearnerUpdate(turn_id="late", summary=TurnSummary(
            turn_id="late", at=TODAY, summary="late words")))
        assert b"late words" in disk_bytes(tmp_path)
        again = client.delete(f"/v1/learners/{learner}", headers=auth("adm")).json()
        assert again["receipt_id"] == first["receipt_id"]
        assert memory.actor.get(f"acme/{learner}") is None and b"late words" not in disk_bytes(tmp_path)


def test_a_learner_being_erased_is_unknown_everywhere_even_unregistered(tmp_path: Path) -> None:
    services = services_for(settings_for(tmp_path))
    with TestClient(build_fastapi(services)) as client:
        assert client.post("/v1/tutor/turns", json=turn("kid-77"), headers=auth()).status_code == 200
        vault = services.learners.vault
        ref = TEST_PSEUDONYMS.pseudonym("acme", "kid-77")  # a job under way (as if its runner had crashed)
        vault.begin_erasure("acme", ref, "kid-77", ref, {"receipt_id": "r", "unlinkable": False})
        assert client.post("/v1/tutor/turns", json=turn("kid-77"), headers=auth()).status_code == 404
        assert client.get("/v1/learners/kid-77", headers=auth()).status_code == 404
        done = client.delete("/v1/learners/kid-77", headers=auth("adm"))  # finishes the job
        assert done.status_code == 200 and done.json()["unlinkable"] is False


def test_a_vault_that_cannot_be_read_is_a_503_not_a_500(tmp_path: Path) -> None:
    """A replica holding another key-encryption key (one that missed a rotation) cannot open the vault: every
    route answers 503 vault_unavailable, nothing crashes and nothing is written."""
    with TestClient(build_fastapi(services_for(settings_for(tmp_path)))) as client:
        learner = register(client, {"display_name": "Kept", "age_band": "adult"})
    settings = settings_for(tmp_path)
    other = build_services(settings, InProcess(EdgeTier.func_or_class(settings.edge, settings.exercises)),
                           InProcess(RouterCore(settings.routing, settings.catalogue, {})), InProcessMemory(settings),
                           None, metrics=RecordingMetrics(), pseudonyms=TEST_PSEUDONYMS,
                           keks=KeyEncryptionKeys([("v9", b"a-different-kek-" * 3)]))
    with TestClient(build_fastapi(other)) as client:
        for method, path, body in (("POST", "/v1/tutor/turns", turn(learner)), ("GET", f"/v1/learners/{learner}/export", None),
                                   ("DELETE", f"/v1/learners/{learner}", None)):
            r = client.request(method, path, json=body, headers=auth("adm" if method != "POST" else "svc"))
            assert r.status_code == 503 and r.json()["error"]["type"] == "vault_unavailable", (path, r.text)
