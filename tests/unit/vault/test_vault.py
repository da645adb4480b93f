"""The vault on a real SQLite file: envelope encryption bound to its owner, registration, KEK rotation, and
shredding that leaves nothing of the learner's key or personal data in the file or its write-ahead log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.unit.stand_ins import TEST_KEKS
from tutor_cluster.vault.crypto import KeyEncryptionKeys, VaultCorrupt, context, new_key, seal, unseal
from tutor_cluster.vault.store import ID_PREFIX, RegistrationConflict, Vault

PROFILE = {"display_name": "Zyzzyva Quillfeather", "email": "zyzzyva.q@example.org", "age_band": "13_15"}


def _disk(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


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


def test_registration_keeps_personal_data_encrypted_and_gives_an_opaque_id(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.db", TEST_KEKS)
    learner_id, _, created = vault.register("acme", "local", PROFILE)
    assert created and learner_id.startswith(ID_PREFIX) and "zyzzyva" not in learner_id.lower()
    entry = vault.entry("acme", learner_id)
    assert entry is not None and len(entry.learner_key) == 32 and not entry.erasing
    assert vault.profile(entry) == PROFILE
    assert vault.entry("globex", learner_id) is None  # tenant-scoped
    disk = _disk(tmp_path / "vault.db")
    for value in PROFILE.values():
        assert value.encode() not in disk  # nothing of it in clear on disk
    # a vault opened with another KEK cannot read it
    other = Vault(tmp_path / "vault.db", KeyEncryptionKeys([("v1", b"another-kek-" * 3)]))
    with pytest.raises(VaultCorrupt):
        other.entry("acme", learner_id)


def test_a_retried_registration_is_one_learner(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.db", TEST_KEKS)
    first = vault.register("acme", "local", PROFILE, request=("req-1", "body-a"))
    again = vault.register("acme", "local", PROFILE, request=("req-1", "body-a"))
    assert first[0] == again[0] and first[2] and not again[2]
    with pytest.raises(RegistrationConflict):
        vault.register("acme", "local", PROFILE, request=("req-1", "body-b"))
    assert vault.register("globex", "local", PROFILE, request=("req-1", "body-a"))[0] != first[0]


def test_kek_rotation_rewraps_tenant_keys_and_the_old_kek_can_go(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.db", TEST_KEKS)
    learner_id, _, _ = vault.register("acme", "local", PROFILE)
    rotated = KeyEncryptionKeys([("v2", b"rotated-kek-" * 3), *[(v, TEST_KEKS.secret(v)) for v in TEST_KEKS.versions]])
    assert Vault(tmp_path / "vault.db", rotated).rewrap() == 1
    only_new = Vault(tmp_path / "vault.db", KeyEncryptionKeys([("v2", b"rotated-kek-" * 3)]))
    entry = only_new.entry("acme", learner_id)
    assert entry is not None and only_new.profile(entry) == PROFILE


def test_shredding_leaves_no_trace_of_the_learner_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    vault = Vault(path, TEST_KEKS)
    learner_id, _, _ = vault.register("acme", "local", PROFILE)
    keep_id, _, _ = vault.register("acme", "local", {**PROFILE, "display_name": "Someone Else"})
    with sqlite3.connect(path) as db:
        sealed_key, sealed_profile = db.execute("SELECT learner_key, profile FROM learners WHERE learner_id = ?",
                                                (learner_id,)).fetchone()
    assert sealed_key in _disk(path)
    assert vault.shred("acme", learner_id) and not vault.shred("acme", learner_id)
    disk = _disk(path)
    assert sealed_key not in disk and sealed_profile not in disk and learner_id.encode() not in disk
    assert vault.entry("acme", learner_id) is None
    kept = vault.entry("acme", keep_id)
    assert kept is not None and vault.profile(kept)["display_name"] == "Someone Else"


def test_an_erasure_job_keeps_the_raw_id_sealed_and_only_until_it_completes(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    vault = Vault(path, TEST_KEKS)
    job = vault.begin_erasure("acme", "t1-ref", "kid-raw-id-42", "t1-subject",
                              {"receipt_id": "r1", "unlinkable": True})
    assert b"kid-raw-id-42" not in _disk(path)
    assert [(j.learner_id, j.subject) for j in Vault(path, TEST_KEKS).pending_erasures()] == [
        ("kid-raw-id-42", "t1-subject")]
    assert Vault(path, TEST_KEKS).erasing("acme", ["t1-ref"]) and not vault.erasing("globex", ["t1-ref"])
    job = vault.step_done(job, "blocked")
    done = vault.finish_erasure(job, {**job.receipt, "erased": ["memory"]})
    assert done.learner_id is None and vault.pending_erasures() == [] and not vault.erasing("acme", ["t1-ref"])
    stored = vault.erasure("acme", ["t1-ref"])
    assert stored is not None and stored.learner_id is None and stored.receipt["erased"] == ["memory"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT learner FROM erasures").fetchone() == (None,)
    assert json.dumps(stored.receipt).find("kid-raw-id-42") < 0
