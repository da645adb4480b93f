"""The vault on a real SQLite file and on a real redis-server (AOF), the same tests for both: envelope encryption
bound to its owner, registration, KEK rotation, and shredding that leaves nothing of the learner's key or
personal data in the store or its files (SQLite and its write-ahead log; Redis keys and its append-only file)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.unit.stand_ins import TEST_KEKS
from tutor_cluster.vault.crypto import KeyEncryptionKeys, VaultCorrupt, context, new_key, seal, unseal
from tutor_cluster.vault.redis_store import RedisVault
from tutor_cluster.vault.store import ID_PREFIX, RegistrationConflict, Vault

PROFILE = {"display_name": "Zyzzyva Quillfeather", "email": "zyzzyva.q@example.org", "age_band": "13_15"}


class Backend:
    """One vault store: ``open(keks)`` opens it (again), ``disk()`` is every byte it keeps."""

    def __init__(self, open_: Callable[[KeyEncryptionKeys], Any], disk: Callable[[], bytes]) -> None:
        self.open, self.disk = open_, disk


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "vault.db"
        return Backend(lambda keks: Vault(path, keks), lambda: b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()))
    server = request.getfixturevalue("redis_server")
    prefix = f"vault-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(server.url)

    def disk() -> bytes:  # the values, then the append-only files once a rewrite has finished
        deadline = time.monotonic() + 30
        while client.info("persistence")["aof_rewrite_in_progress"] and time.monotonic() < deadline:
            time.sleep(0.1)
        values = b"".join(k + (client.dump(k) or b"") for k in client.scan_iter(match=f"{prefix}:*", count=1000))
        return values + b"".join(p.read_bytes() for p in sorted(server.dir.rglob("*")) if p.is_file())

    return Backend(lambda keks: RedisVault(server.url, keks, prefix=prefix), disk)


def test_a_sealed_value_opens_only_for_its_owner() -> None:
    key = new_key()
    blob = seal(key, b"secret", context("profile", "acme", "l1"))
    assert unseal(key, blob, context("profile", "acme", "l1")) == b"secret"
    for wrong in (context("profile", "globex", "l1"), context("profile", "acme", "l2")):
        with pytest.raises(VaultCorrupt):
            unseal(key, blob, wrong)
    with pytest.raises(VaultCorrupt):
        unseal(new_key(), blob, context("profile", "acme", "l1"))
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(VaultCorrupt):
        unseal(key, flipped, context("profile", "acme", "l1"))


def test_registration_keeps_personal_data_encrypted_and_gives_an_opaque_id(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    learner_id, _, created = vault.register("acme", "local", PROFILE)
    assert created and learner_id.startswith(f"{ID_PREFIX}local_") and "zyzzyva" not in learner_id.lower()
    entry = vault.entry("acme", learner_id)
    assert entry is not None and len(entry.learner_key) == 32 and not entry.erasing
    assert vault.profile(entry) == PROFILE
    assert vault.entry("globex", learner_id) is None  # tenant-scoped
    disk = backend.disk()
    assert learner_id.encode() in disk  # the control: the scan sees the store
    for value in PROFILE.values():
        assert value.encode() not in disk  # nothing of it in clear on disk
    # a vault opened with another KEK cannot read it
    other = backend.open(KeyEncryptionKeys([("v1", b"another-kek-" * 3)]))
    with pytest.raises(VaultCorrupt):
        other.entry("acme", learner_id)


def test_a_retried_registration_is_one_learner(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    first = vault.register("acme", "local", PROFILE, request=("req-1", "body-a"))
    again = vault.register("acme", "local", PROFILE, request=("req-1", "body-a"))
    assert first[0] == again[0] and first[2] and not again[2]
    with pytest.raises(RegistrationConflict):
        vault.register("acme", "local", PROFILE, request=("req-1", "body-b"))
    assert vault.register("globex", "local", PROFILE, request=("req-1", "body-a"))[0] != first[0]


def test_kek_rotation_rewraps_tenant_keys_and_the_old_kek_can_go(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    learner_id, _, _ = vault.register("acme", "local", PROFILE)
    rotated = KeyEncryptionKeys([("v2", b"rotated-kek-" * 3), *[(v, TEST_KEKS.secret(v)) for v in TEST_KEKS.versions]])
    assert backend.open(rotated).rewrap() == 1
    only_new = backend.open(KeyEncryptionKeys([("v2", b"rotated-kek-" * 3)]))
    entry = only_new.entry("acme", learner_id)
    assert entry is not None and only_new.profile(entry) == PROFILE


def test_shredding_leaves_no_trace_of_the_learner_on_disk(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    learner_id, _, _ = vault.register("acme", "local", PROFILE, request=("req-9", "a body"))
    keep_id, _, _ = vault.register("acme", "local", {**PROFILE, "display_name": "Someone Else"})
    vault.record_consent("acme", learner_id, [{"scope": "analytics", "granted": False, "by": "zyzzyva-guardian"}])
    before = backend.disk()
    assert learner_id.encode() in before and b"zyzzyva-guardian" in before and b"req-9" in before
    vault.block("acme", learner_id)
    assert vault.entry("acme", learner_id).erasing
    assert vault.shred("acme", learner_id) and not vault.shred("acme", learner_id)
    disk = backend.disk()
    for trace in (learner_id.encode(), b"zyzzyva-guardian", b"req-9"):  # their row, consents, registration
        assert trace not in disk, trace
    assert vault.entry("acme", learner_id) is None and vault.consent_history("acme", learner_id) == []
    assert vault.register("acme", "local", PROFILE, request=("req-9", "a body"))[0] != learner_id  # key freed
    kept = vault.entry("acme", keep_id)
    assert kept is not None and vault.profile(kept)["display_name"] == "Someone Else"


def test_an_erasure_job_keeps_the_raw_id_sealed_and_only_until_it_completes(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    job = vault.begin_erasure("acme", "t1-ref", "kid-raw-id-42", "t1-subject",
                              {"receipt_id": "r1", "unlinkable": True})
    assert vault.begin_erasure("acme", "t1-ref", "kid-raw-id-42", "t1-subject", {}).receipt["receipt_id"] == "r1"
    assert b"kid-raw-id-42" not in backend.disk() and b"t1-ref" in backend.disk()
    assert [(j.learner_id, j.subject) for j in backend.open(TEST_KEKS).pending_erasures()] == [
        ("kid-raw-id-42", "t1-subject")]
    assert backend.open(TEST_KEKS).erasing("acme", ["t1-ref"]) and not vault.erasing("globex", ["t1-ref"])
    job = vault.step_done(job, "blocked")
    assert backend.open(TEST_KEKS).erasure("acme", ["other", "t1-ref"]).steps == ("blocked",)
    done = vault.finish_erasure(job, {**job.receipt, "erased": ["memory"]})
    assert done.learner_id is None and vault.pending_erasures() == [] and not vault.erasing("acme", ["t1-ref"])
    stored = vault.erasure("acme", ["t1-ref"])
    assert stored is not None and stored.learner_id is None and stored.receipt["erased"] == ["memory"]
    assert json.dumps(stored.receipt).find("kid-raw-id-42") < 0
    restarted = vault.begin_erasure("acme", "t1-ref", "kid-raw-id-42", "t1-subject", {"receipt_id": "r2"},
                                    restart=True)  # the same client-chosen id erased again
    assert restarted.receipt["receipt_id"] == "r2" and restarted.learner_id == "kid-raw-id-42"


def test_inactive_learners_are_found_and_blocked_unless_a_turn_spared_them(backend: Backend) -> None:
    """privacy.retention.vault_days: activity recorded per learner; only those inactive since the cutoff are
    blocked (atomically: a turn recorded since spares them), repeatably; shredding forgets them."""
    vault = backend.open(TEST_KEKS)
    idle, _, _ = vault.register("acme", "local", PROFILE)
    busy, _, _ = vault.register("acme", "local", PROFILE)
    other, _, _ = vault.register("globex", "local", PROFILE)
    now = time.time()
    assert vault.entry("acme", idle).active_at == pytest.approx(vault.entry("acme", idle).created_at)
    vault.touch("acme", busy, at=now + 100)
    vault.touch("globex", other, at=now + 300)
    assert vault.entry("acme", busy).active_at == now + 100
    assert vault.inactive(now + 50) == [("acme", idle)]
    assert sorted(backend.open(TEST_KEKS).inactive(now + 200)) == sorted([("acme", idle), ("acme", busy)])
    assert not vault.block_inactive("acme", busy, now + 50)  # active since: spared
    assert not vault.entry("acme", busy).erasing
    assert vault.block_inactive("acme", idle, now + 50) and vault.entry("acme", idle).erasing
    assert vault.block_inactive("acme", idle, now - 1e6)  # blocked already: still blocked (the sweep resumes)
    vault.touch("acme", idle, at=now + 400)  # a blocked learner's activity is not recorded any more
    assert vault.entry("acme", idle).active_at < now + 50
    assert not vault.block_inactive("acme", "lrn_local_never", now + 50)
    vault.shred("acme", idle)
    assert vault.inactive(now + 1000) == sorted([("acme", busy), ("globex", other)])
    vault.touch("acme", idle, at=now + 500)  # an erased learner is not recreated by a late touch
    assert vault.entry("acme", idle) is None and ("acme", idle) not in vault.inactive(now + 1000)


def test_a_vault_made_before_activity_was_recorded_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "vault.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE learners (tenant TEXT NOT NULL, learner_id TEXT NOT NULL, region TEXT NOT NULL, "
                "created_at REAL NOT NULL, erasing INTEGER NOT NULL DEFAULT 0, learner_key BLOB NOT NULL, "
                "profile BLOB NOT NULL, minor_until BLOB NOT NULL, PRIMARY KEY (tenant, learner_id))")
    old.close()
    vault = Vault(path, TEST_KEKS)
    learner_id, created, _ = vault.register("acme", "local", PROFILE)
    assert vault.entry("acme", learner_id).active_at == created
    assert vault.inactive(created + 1) == [("acme", learner_id)]


def test_learners_from_before_activity_was_recorded_count_from_registration(backend: Backend) -> None:
    """A vault written by an older version: no activity recorded (SQLite: NULL; Redis: not in the activity set)."""
    vault = backend.open(TEST_KEKS)
    old, created, _ = vault.register("acme", "local", PROFILE)
    if isinstance(vault, Vault):
        with vault._lock:
            vault._db.execute("UPDATE learners SET active_at = NULL")
    else:
        vault._redis.zrem(f"{vault._p}:active", vault._member("acme", old))
        vault._redis.hdel(vault._k("l", "acme", old), "active_at")
    assert backend.open(TEST_KEKS).inactive(created + 1) == [("acme", old)]
    assert backend.open(TEST_KEKS).inactive(created - 1) == []


def test_one_replica_at_a_time_resumes_an_erasure_job(backend: Backend) -> None:
    vault = backend.open(TEST_KEKS)
    job = vault.begin_erasure("acme", "t1-ref", "kid-1", "t1-subject", {"receipt_id": "r1", "unlinkable": True})
    other = backend.open(TEST_KEKS)
    assert vault.claim(job, 60) and not other.claim(job, 60) and not vault.claim(job, 60)
    expired = backend.open(TEST_KEKS).begin_erasure("acme", "t2-ref", "kid-2", "t2-subject", {"receipt_id": "r2"})
    assert other.claim(expired, 0.001)
    time.sleep(0.05)
    assert vault.claim(expired, 60)  # a claim that ran out (its replica died) is taken over


def test_a_retention_period_shorter_than_activity_is_recorded_is_refused() -> None:
    from pydantic import ValidationError

    from tutor_cluster.config.privacy import RetentionConfig

    with pytest.raises(ValidationError, match="vault_days"):
        RetentionConfig(vault_days=1)
    assert RetentionConfig(vault_days=2).vault_days == 2
