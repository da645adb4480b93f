"""API fuzzing: schemathesis generates requests for every operation of /openapi.json (valid and invalid bodies,
paths, queries, headers; a bounded number of examples each) against the real FastAPI app in-process — real edge,
learner memory, vault, relations and audit log on SQLite files; the engine is a stand-in for the GPU replica
(the real engine path is covered in tests/e2e). No response may be a server error (5xx), and every response whose
status the schema documents must match its declared schema."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.unit.stand_ins import FixedAnswer
from tests.unit.turns.test_rights import auth, services_for, settings_for
from tutor_cluster.api.app import build_fastapi

#: Examples per operation: bounded, so the run takes about a minute on two cores.
EXAMPLES = 6


_STATE = Path(tempfile.mkdtemp(prefix="tutor-fuzz-"))  # the app's stores, for this module's run
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)
_APP = build_fastapi(services_for(settings_for(_STATE), FixedAnswer("Try halves.")))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP, headers=auth("adm"))


@pytest.fixture(scope="module")
def client() -> TestClient:
    with TestClient(_APP, raise_server_exceptions=False) as c:  # a crash must come back as the 500 it would be
        yield c


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_is_a_server_error_and_every_response_matches_its_schema(case, client: TestClient) -> None:  # noqa: ANN001
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth("adm"))
    response = client.request(**kwargs)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
