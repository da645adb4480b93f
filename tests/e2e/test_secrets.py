"""No secret reaches a log (issue 15, hardening): after the session's traffic — turns, chat, registrations, erasures,
forwarding between regions, a re-embedding job, refused keys — the service's own log, every Ray log of the session
and the analytics events hold none of the API keys, the pseudonym secrets or vault KEKs of either region (as text,
base64 or hex), nor Ray's token."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.e2e.conftest import HOME_REGION, OTHER_REGION, Service, ray_token
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.vault.crypto import KeyEncryptionKeys

pytestmark = pytest.mark.integration
#: Runs after every other test that leaves the service up (conftest.py orders it), so it scans their logs too.
AFTER_THE_TRAFFIC = True

RAY_LOGS = Path("/tmp/ray/session_latest/logs")


def _secrets(service: Service) -> dict[str, bytes]:
    found = {"admin key": service.key.encode(), "chat key": service.chat_key.encode(),
             "rate-limited key": service.limited_key.encode(), "Ray token": ray_token().encode()}
    found.update({f"{tenant} key": key.encode() for tenant, key in service.tenant_keys.items()})
    for region in (HOME_REGION, OTHER_REGION):
        privacy = service.region_settings(region).privacy
        for kind, secrets in (("pseudonym secret", PseudonymKeys.load(privacy.keys_path())),
                              ("vault KEK", KeyEncryptionKeys.load(privacy.kek_path()))):
            for version in secrets.versions:
                raw = secrets.secret(version)
                found[f"{region} {kind} {version} (base64)"] = base64.b64encode(raw)
                found[f"{region} {kind} {version} (hex)"] = raw.hex().encode()
    return found


def test_no_secret_is_in_any_log_or_event(service: Service, client) -> None:
    assert client.post("/v1/tutor/turns", json={"learner_id": "sec-1", "session_id": "s", "message": "3/4",
                                                "exercise_id": "frac-add-1"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer tc-not-a-key"}).status_code == 401
    logs = [service.log, *(p for root in (RAY_LOGS, service.events) for p in sorted(root.rglob("*")) if p.is_file())]
    text = b"".join(p.read_bytes() for p in logs)
    assert len(logs) > 20 and b"tutor-eu" in text  # the control: the scan reads the service's logs
    secrets = _secrets(service)
    assert len(secrets) >= 12
    leaked = [name for name, value in secrets.items() if value in text]
    assert not leaked, f"secrets in logs: {leaked}"
