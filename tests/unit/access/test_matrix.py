"""Every cell of the role × route × relation matrix, through HTTP (the real FastAPI app, middleware and routes
in-process; the real edge, learner-memory logic over SQLite and relations store; no model is called: turns are
answers the edge settles). Expected outcomes are derived from the declared table (access/rules.py) and from what
each relation means, written here independently of access/policy.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.stand_ins import TEST_KEKS, TEST_PSEUDONYMS, InProcess, InProcessMemory, RecordingMetrics
from tutor_cluster.access.rules import RULES, TENANT_WIDE
from tutor_cluster.api.app import build_fastapi, build_services
from tutor_cluster.api.auth import hash_key
from tutor_cluster.config.auth import ApiKey
from tutor_cluster.config.settings import Settings, load_settings
from tutor_cluster.edge.deployment import EdgeTier
from tutor_cluster.identity import ROLES
from tutor_cluster.knowledge.retriever import SearchResult
from tutor_cluster.routing.router import RouterCore

OWN, OTHER = "kid-1", "kid-2"  # related to the caller; same tenant, unrelated


def _foreign(role: str) -> str:
    """A learner of another tenant (one per role: a turn may create the same id in the caller's own tenant)."""
    return f"far-{role}"


class _Knowledge:
    def search(self, query: str, k: int, filters: Any) -> SearchResult:
        return SearchResult(version=1, collection="c", embedding_model="m", passages=[], latency_ms={})

    def status(self) -> dict[str, int]:
        return {"version": 1}


def _key(role: str) -> str:
    return f"tc-{role}"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    tmp = tmp_path_factory.mktemp("matrix")
    base = load_settings()
    keys = [ApiKey(id=role, sha256=hash_key(_key(role)), tenant="acme", role=role, scopes=["tutor", "chat", "admin"],
                   learner_id=OWN if role == "learner" else None) for role in ROLES]
    keys.append(ApiKey(id="globex", sha256=hash_key(_key("globex")), tenant="globex", scopes=["tutor"]))
    raw = base.model_dump()
    raw["auth"] = {"api_keys": [k.model_dump() for k in keys]}
    raw["learner"]["store"] = {"backend": "sqlite", "sqlite_path": str(tmp / "learners.db")}
    raw["telemetry"]["events"]["enabled"] = False
    raw["privacy"]["audit_sqlite_path"] = str(tmp / "audit.db")
    raw["privacy"]["vault_sqlite_path"] = str(tmp / "vault.db")
    settings = Settings.model_validate(raw)
    router = RouterCore(settings.routing, settings.catalogue, {})
    services = build_services(settings, InProcess(EdgeTier.func_or_class(settings.edge, settings.exercises)),
                              InProcess(router), InProcessMemory(settings), InProcess(_Knowledge()),
                              metrics=RecordingMetrics(), pseudonyms=TEST_PSEUDONYMS, keks=TEST_KEKS)
    with TestClient(build_fastapi(services)) as client:
        setup = [("PUT", "/v1/classes/c1/teachers/teacher"), ("PUT", f"/v1/classes/c1/learners/{OWN}"),
                 ("PUT", f"/v1/guardians/guardian/learners/{OWN}")]
        for method, path in setup:
            assert client.request(method, path, headers=_auth("institution_admin")).status_code == 200
        for learner, who in ((OWN, "service"), (OTHER, "service"), *((_foreign(r), "globex") for r in ROLES)):
            assert client.post("/v1/tutor/turns", json=_answer(learner), headers=_auth(who)).status_code == 200
        yield client


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(role)}"}


def _answer(learner: str) -> dict[str, str]:
    return {"learner_id": learner, "session_id": "s", "message": "3/4", "exercise_id": "frac-add-1"}


def _may_touch(role: str, target: str, rule: str) -> bool:
    """What each relation means: tenant-wide roles see their tenant; the others only the learner they are
    related to (the learner key's own id; the guardian's child; the teacher's enrolled learner). Another
    tenant's learner is never reached; a turn naming its id starts a new learner in the caller's own tenant."""
    if target == _foreign(role) and rule != "POST /v1/tutor/turns":
        return False
    return role in TENANT_WIDE or (role in ("learner", "guardian", "teacher") and target == OWN)


#: How each role that may record consent says it was given.
CONSENT_METHOD = {"learner": "self", "guardian": "signed_form", "institution_admin": "school_authorization"}
LEARNER_ROUTES = {  # (target, caller's role) → request; the turn last: it may start a learner under a foreign id
    "GET /v1/learners/{learner_id}": lambda t, _: ("GET", f"/v1/learners/{t}", None),
    "PATCH /v1/learners/{learner_id}/preferences": lambda t, _: ("PATCH", f"/v1/learners/{t}/preferences",
                                                                 {"pace": "slow"}),
    "GET /v1/learners/{learner_id}/next-exercise": lambda t, _: ("GET", f"/v1/learners/{t}/next-exercise", None),
    "GET /v1/learners/{learner_id}/audit": lambda t, _: ("GET", f"/v1/learners/{t}/audit", None),
    "GET /v1/learners/{learner_id}/export": lambda t, _: ("GET", f"/v1/learners/{t}/export", None),
    "GET /v1/learners/{learner_id}/consent": lambda t, _: ("GET", f"/v1/learners/{t}/consent", None),
    "PUT /v1/learners/{learner_id}/consent": lambda t, role: ("PUT", f"/v1/learners/{t}/consent", {
        "scopes": {"model_improvement": True}, "method": CONSENT_METHOD.get(role)}),
    "POST /v1/tutor/turns": lambda t, _: ("POST", "/v1/tutor/turns", _answer(t)),
}
OTHER_ROUTES = {  # (request, status when allowed)
    "POST /v1/learners": (("POST", "/v1/learners", {"display_name": "Ada", "age_band": "adult"}), 201),
    "POST /v1/chat/completions": (("POST", "/v1/chat/completions", {
        "model": "auto", "exercise_id": "frac-add-1", "messages": [{"role": "user", "content": "3/4"}]}), 200),
    "GET /v1/models": (("GET", "/v1/models", None), 200),
    "GET /v1/models/{model_id}": (("GET", "/v1/models/auto", None), 200),
    "GET /v1/curriculum/search": (("GET", "/v1/curriculum/search?q=fractions", None), 200),
    "GET /v1/admin/stats": (("GET", "/v1/admin/stats", None), 200),
    "PUT /v1/classes/{class_id}/teachers/{subject}": (("PUT", "/v1/classes/tmp/teachers/x", None), 200),
    "DELETE /v1/classes/{class_id}/teachers/{subject}": (("DELETE", "/v1/classes/tmp/teachers/x", None), 200),
    "PUT /v1/classes/{class_id}/learners/{learner_id}": (("PUT", "/v1/classes/tmp/learners/kid-9", None), 200),
    "DELETE /v1/classes/{class_id}/learners/{learner_id}": (("DELETE", "/v1/classes/tmp/learners/kid-9", None), 200),
    "PUT /v1/guardians/{subject}/learners/{learner_id}": (("PUT", "/v1/guardians/g2/learners/kid-9", None), 200),
    "DELETE /v1/guardians/{subject}/learners/{learner_id}": (("DELETE", "/v1/guardians/g2/learners/kid-9", None),
                                                             200),
}


def test_every_route_has_a_rule_and_the_matrix_covers_it(app: TestClient) -> None:
    served = {f"{m} {r.path.replace(':path', '')}" for r in app.app.routes for m in getattr(r, "methods", ())
              if r.path.startswith("/v1/")}
    assert served == set(RULES), served ^ set(RULES)
    covered = set(LEARNER_ROUTES) | set(OTHER_ROUTES) | {"GET /v1/classes/{class_id}", "GET /v1/guardians/{subject}",
                                                         ERASE}
    assert covered == set(RULES)


def test_the_matrix_holds_cell_by_cell(app: TestClient) -> None:
    unexpected = []
    cells = 0
    for role in ROLES:
        for target in (OWN, OTHER, _foreign(role)):
            for rule, build in LEARNER_ROUTES.items():
                method, path, body = build(target, role)
                got = app.request(method, path, json=body, headers=_auth(role)).status_code
                want = 403 if role not in RULES[rule].roles else 200 if _may_touch(role, target, rule) else 404
                if rule == "PUT /v1/learners/{learner_id}/consent" and want == 200 and role != "learner":
                    want = 403  # these learners are of consent age (age unknown: not registered): they decide
                cells += 1
                if got != want:
                    unexpected.append(f"{role} {rule} [{target}]: {got}, declared {want}")
        for rule, ((method, path, body), ok) in OTHER_ROUTES.items():
            got = app.request(method, path, json=body, headers=_auth(role)).status_code
            want = ok if role in RULES[rule].roles else 403
            cells += 1
            if got != want:
                unexpected.append(f"{role} {rule}: {got}, declared {want}")
        for path, mine in (("/v1/classes/c1", role == "teacher"), ("/v1/classes/c9", False),
                           ("/v1/guardians/guardian", role == "guardian"), ("/v1/guardians/g9", False)):
            rule = "GET /v1/classes/{class_id}" if "classes" in path else "GET /v1/guardians/{subject}"
            got = app.get(path, headers=_auth(role)).status_code
            # teachers and guardians see only their own class / children; managers see any in the tenant
            want = 403 if role not in RULES[rule].roles else 200 if role in TENANT_WIDE or mine else 404
            cells += 1
            if got != want:
                unexpected.append(f"{role} GET {path}: {got}, declared {want}")
    assert cells == len(ROLES) * (len(LEARNER_ROUTES) * 3 + len(OTHER_ROUTES) + 4)
    assert unexpected == [], "\n".join(unexpected)
    for role in ROLES:  # the other tenant's learners: untouched by all of the above
        theirs = app.get(f"/v1/learners/{_foreign(role)}", headers=_auth("globex")).json()
        assert theirs["version"] == 1 and theirs["preferences"] == {}, theirs


ERASE = "DELETE /v1/learners/{learner_id}"


def test_erasure_cell_by_cell(app: TestClient) -> None:
    """DELETE destroys what it touches, so each cell gets its target made afresh first: OWN with the caller's
    relation to it (the learner key's own id, the guardian's link, the teacher's class), OTHER unrelated, and a
    learner of another tenant that the caller's tenant never had."""
    unexpected = []
    for role in ROLES:
        for target in (OWN, OTHER, f"far-erase-{role}"):
            foreign = target.startswith("far-")
            if foreign:
                assert app.post("/v1/tutor/turns", json=_answer(target), headers=_auth("globex")).status_code == 200
            elif target == OWN:
                _remake_own(app)
            else:
                assert app.post("/v1/tutor/turns", json=_answer(target), headers=_auth("service")).status_code == 200
            got = app.delete(f"/v1/learners/{target}", headers=_auth(role))
            allowed = role in RULES[ERASE].roles
            want = 403 if not allowed else 200 if not foreign and (role in TENANT_WIDE or (
                role in ("learner", "guardian") and target == OWN)) else 404
            if got.status_code != want:
                unexpected.append(f"{role} DELETE [{target}]: {got.status_code}, declared {want}")
            if got.status_code == 200:
                assert got.json()["learner_id"] == target and set(got.json()["erased"]) >= {"memory", "relations"}
                assert app.get(f"/v1/learners/{target}", headers=_auth("service")).status_code == 404
    assert unexpected == [], "\n".join(unexpected)
    for role in ROLES:  # the other tenant's learners survive every attempt
        assert app.get(f"/v1/learners/far-erase-{role}", headers=_auth("globex")).status_code == 200
    _remake_own(app)  # for the tests after this one


def _remake_own(app: TestClient) -> None:
    assert app.post("/v1/tutor/turns", json=_answer(OWN), headers=_auth("service")).status_code == 200
    for path in (f"/v1/classes/c1/learners/{OWN}", f"/v1/guardians/guardian/learners/{OWN}"):
        assert app.put(path, headers=_auth("institution_admin")).status_code == 200


def test_a_learner_key_is_exactly_one_learner(app: TestClient) -> None:
    mine = app.get(f"/v1/learners/{OWN}", headers=_auth("learner"))
    assert mine.status_code == 200 and mine.json()["learner_id"] == OWN
    trail = app.get(f"/v1/learners/{OWN}/audit?limit=1", headers=_auth("learner")).json()["records"]
    assert trail[0]["role"] == "learner" and trail[0]["actor"] == "self"  # never their own key or JWT subject
    forbidden = app.get("/v1/admin/stats", headers=_auth("learner")).json()["error"]
    assert forbidden["code"] == "role_not_allowed"


def test_unenrolling_ends_a_teachers_access(app: TestClient, tmp_path: Path) -> None:
    assert app.get(f"/v1/learners/{OWN}", headers=_auth("teacher")).status_code == 200
    assert app.delete(f"/v1/classes/c1/learners/{OWN}", headers=_auth("service")).status_code == 200
    try:
        assert app.get(f"/v1/learners/{OWN}", headers=_auth("teacher")).status_code == 404
    finally:
        assert app.put(f"/v1/classes/c1/learners/{OWN}", headers=_auth("service")).status_code == 200


def test_the_roles_doc_is_generated_from_the_table() -> None:
    from tests import REPO_ROOT
    from tutor_cluster.access.rules import markdown

    assert (REPO_ROOT / "docs" / "roles.md").read_text(encoding="utf-8") == markdown(), (
        "docs/roles.md is stale: python -m tutor_cluster.access.rules > docs/roles.md")


def test_the_idempotency_key_header_makes_a_retried_turn_apply_once(app: TestClient) -> None:
    body = {**_answer("kid-idem"), "message": "2/6"}
    headers = {**_auth("service"), "Idempotency-Key": "retry-me-1"}
    first, again = (app.post("/v1/tutor/turns", json=body, headers=headers).json() for _ in range(2))
    assert first["memory"]["applied"] and not again["memory"]["applied"]
    assert first["memory"]["version"] == again["memory"]["version"] == 1


def test_a_guardian_reads_who_accessed_their_childs_data(app: TestClient) -> None:
    """The disclosure record (FERPA §99.32): a teacher's view of the child appears in the guardian's audit read,
    with the teacher's key, role and purpose, the child only as a pseudonym; another tenant sees nothing."""
    assert app.get(f"/v1/learners/{OWN}", headers=_auth("teacher")).status_code == 200
    r = app.get(f"/v1/learners/{OWN}/audit?limit=1000", headers=_auth("guardian"))
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    seen = [x for x in records if x["actor"] == "teacher" and x["route"] == "GET /v1/learners/{learner_id}"]
    assert seen and seen[0]["role"] == "teacher" and seen[0]["purpose"] == "instruction"
    assert seen[0]["subject"] == TEST_PSEUDONYMS.pseudonym("acme", OWN) and OWN not in r.text
    assert [x["seq"] for x in records] == sorted((x["seq"] for x in records), reverse=True)  # newest first
    assert any(x["route"] == "POST /v1/tutor/turns" and x["role"] == "service" for x in records)  # turns too
    again = app.get(f"/v1/learners/{OWN}/audit?limit=1", headers=_auth("guardian")).json()["records"]
    assert again[0]["resource"] == "audit trail" and again[0]["actor"] == "guardian"  # the read is recorded too
    assert app.get(f"/v1/learners/{OWN}/audit", headers=_auth("teacher")).status_code == 403
    assert app.get(f"/v1/learners/{OWN}/audit?limit=0", headers=_auth("guardian")).status_code == 422
