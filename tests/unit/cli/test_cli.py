"""The tutor-cluster command: exit codes and one-line errors (no Ray needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def _cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, input=stdin)


def test_status_and_down_when_not_running(tmp_path) -> None:
    env = {"TUTOR_STATE_DIR": str(tmp_path)}
    status = _cli("status", env=env)
    assert status.returncode == 3 and "not running" in status.stdout
    down = _cli("down", env=env)
    assert down.returncode == 0 and "not running" in down.stdout


def test_up_refuses_a_port_in_use_without_starting_ray(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = _cli("up", "--port", str(port), env={"TUTOR_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port} is in use" in proc.stderr


@pytest.mark.parametrize("args", [["up", "--port", "70000"], ["up", "--port", "x"], ["nonsense"],
                                  ["config", "check"]])
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path) -> None:
    proc = _cli(*args, env={"TUTOR_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_keys_hash_prints_the_legacy_sha256_and_keys_list_shows_validity(tmp_path) -> None:
    out = _cli("keys", "new", "--id", "k").stdout
    key = out.split("key (shown once): ")[1].split()[0]
    digest = _cli("keys", "hash", stdin=key + "\n").stdout.strip()
    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    config = tmp_path / "s.yaml"
    config.write_text("catalogue: models.yaml\nauth:\n  api_keys:\n"
                      f"    - {{id: old, sha256: {digest}, expires_at: '2020-01-01T00:00:00Z'}}\n"
                      "    - " + out.split("api_keys:\n")[1].strip().lstrip("- ") + "\n")
    listed = _cli("keys", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "EXPIRED" in rows["old"] and "sha256 (legacy)" in rows["old"]
    assert "never" in rows["k"] and "scrypt" in rows["k"]


def test_policies_lists_rules() -> None:
    assert "rules" in _cli("policies").stdout.split()


def test_learner_fit_bkt_recovers_parameters_from_a_log(tmp_path) -> None:
    import json
    import random

    import yaml

    from tutor_cluster.config.learner import MemoryPolicy

    rng = random.Random(5)
    truth = {"prior": 0.2, "learn": 0.15, "guess": 0.2, "slip": 0.1}
    lines = []
    for learner in range(400):  # simulate BKT learners on one skill
        known = rng.random() < truth["prior"]
        for _ in range(15):
            correct = rng.random() < (1 - truth["slip"] if known else truth["guess"])
            lines.append(json.dumps({"learner_id": f"l{learner}", "skill": "fractions.add", "correct": correct}))
            known = known or rng.random() < truth["learn"]
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines))
    proc = _cli("learner", "fit-bkt", str(log))
    assert proc.returncode == 0, proc.stderr
    block = yaml.safe_load(proc.stdout)
    policy = MemoryPolicy.model_validate(block["learner"]["policy"])  # pastes straight into settings
    fitted = policy.bkt_by_skill["fractions.add"]
    assert abs(fitted.learn - truth["learn"]) < 0.05 and abs(fitted.guess - truth["guess"]) < 0.05
    assert abs(fitted.slip - truth["slip"]) < 0.05 and abs(fitted.prior - truth["prior"]) < 0.08


@pytest.mark.parametrize(("content", "needle"), [
    ('{"learner_id": "a", "skill": "s", "correct": true}\n{"learner_id": "a", "skill": "s"', ":2: not valid JSON"),
    ('{"learner_id": "a", "skill": "s", "correct": "yes"}', ":1: field 'correct'"),
    ("", "no interactions"),
])
def test_learner_fit_bkt_bad_log_exits_2_naming_the_line(tmp_path, content, needle) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(content)
    proc = _cli("learner", "fit-bkt", str(log))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr


def test_learners_from_before_tenancy_stop_up_until_migrated(tmp_path) -> None:
    from tutor_cluster.config.learner import MemoryPolicy
    from tutor_cluster.learner.context import LearnerUpdate, apply_update, new_context
    from tutor_cluster.learner.stores import SQLiteStore

    db = tmp_path / "learners.db"
    store = SQLiteStore(db)  # a learner written the way every learner was before tenancy: keyed by its id alone
    store.apply("student-1", LearnerUpdate(turn_id="t1", skill="s", correct=True),
                lambda cur, upd: apply_update(cur or new_context("student-1"), upd, MemoryPolicy()))
    store.close()
    config = tmp_path / "settings.yaml"
    config.write_text(f"catalogue: models.yaml\nlearner:\n  store: {{backend: sqlite, sqlite_path: {db}}}\n"
                      "knowledge: {enabled: false}\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"TUTOR_STATE_DIR": str(tmp_path / "state")}
    up = _cli("up", "--config", str(config), "--port", str(port), env=env)
    assert up.returncode == 2 and up.stderr.strip().count("\n") == 0, up.stderr  # one line, nothing started
    assert "1 learner(s) from before tenancy" in up.stderr and "learner migrate-tenancy --tenant" in up.stderr
    bad = _cli("learner", "migrate-tenancy", "--tenant", "a/b", "--config", str(config))
    assert bad.returncode == 2 and "--tenant" in bad.stderr
    moved = _cli("learner", "migrate-tenancy", "--tenant", "acme", "--config", str(config))
    assert moved.returncode == 0 and "moved 1 learner(s) under tenant 'acme'" in moved.stdout
    store = SQLiteStore(db)
    assert store.legacy_keys() == [] and store.get("acme/student-1").skills["s"].correct == 1
    store.close()


def test_keys_revoke_prints_the_keys_without_it_and_the_result_loads(tmp_path) -> None:
    import yaml

    from tutor_cluster.config.settings import load_settings

    entries = []
    for key_id in ("a", "b"):
        out = _cli("keys", "new", "--id", key_id, "--tenant", "acme").stdout
        entries.append(out.split("api_keys:\n")[1].strip().lstrip("- "))
    config = tmp_path / "s.yaml"
    config.write_text("catalogue: models.yaml\nauth:\n  api_keys:\n" + "".join(f"    - {e}\n" for e in entries))
    revoked = _cli("keys", "revoke", "a", "--config", str(config))
    assert revoked.returncode == 0, revoked.stderr
    block = yaml.safe_load(revoked.stdout)
    assert [k["id"] for k in block["auth"]["api_keys"]] == ["b"]
    config.write_text("catalogue: models.yaml\n" + revoked.stdout)
    kept = load_settings(config, env={}).auth.api_keys
    assert [(k.id, k.tenant) for k in kept] == [("b", "acme")] and kept[0].hash  # b's entry survives intact
    unknown = _cli("keys", "revoke", "zzz", "--config", str(config))
    assert unknown.returncode == 2 and "no key 'zzz'" in unknown.stderr


@pytest.mark.parametrize("args, needle", [(["--scopes", "tutor,root"], "--scopes"), (["--tenant", "a/b"], "--tenant"),
                                          (["--role", "wizard"], "--role"), (["--expires-days", "0"], "--expires-days"),
                                          (["--role", "learner"], "--learner-id")])
def test_keys_new_refuses_what_settings_would_refuse(args: list[str], needle: str) -> None:
    proc = _cli("keys", "new", "--id", "k", *args)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "shown once" not in proc.stdout  # no key is printed for an entry that would not load


def test_migrate_tenancy_with_the_store_down_is_one_line(tmp_path) -> None:
    config = tmp_path / "s.yaml"
    config.write_text("catalogue: models.yaml\nlearner:\n  store: {backend: redis, redis_url: 'redis://127.0.0.1:1/0', "
                      "timeout_s: 0.2}\n")
    proc = _cli("learner", "migrate-tenancy", "--tenant", "acme", "--config", str(config))
    assert proc.returncode == 1 and proc.stderr.startswith("tutor-cluster: learner store:"), proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_privacy_show_and_rotate_key(tmp_path) -> None:
    """The pseudonym secrets' versions are shown (never a secret); rotation adds a current version; a missing or
    malformed file is exit 2 with one line."""
    keys = tmp_path / "pseudonym-keys"
    env = {"TUTOR_STATE_DIR": str(tmp_path), "TUTOR_PSEUDONYM_KEYS_FILE": str(keys)}
    missing = _cli("privacy", "show", env=env)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    keys.write_text("k1:c2VjcmV0\n")  # 6 bytes: too short
    short = _cli("privacy", "show", env=env)
    assert short.returncode == 2 and "at least 32" in short.stderr
    keys.unlink()
    from tutor_cluster.privacy import ensure_key_file

    ensure_key_file(keys)
    secret = keys.read_text().split(":", 1)[1].strip()
    shown = _cli("privacy", "show", env=env)
    assert shown.returncode == 0 and "current k1" in shown.stdout and secret not in shown.stdout
    rotated = _cli("privacy", "rotate-key", env=env)
    assert rotated.returncode == 0 and "k2" in rotated.stdout and secret not in rotated.stdout
    assert "current k2; versions k2, k1" in _cli("privacy", "show", env=env).stdout


def test_privacy_rotate_kek_rewraps_the_vault(tmp_path) -> None:
    """A new key-encryption key re-wraps every tenant data key: the vault then opens with the new key alone."""
    from tutor_cluster.privacy import ensure_key_file
    from tutor_cluster.vault.crypto import KeyEncryptionKeys
    from tutor_cluster.vault.store import Vault

    kek, vault = tmp_path / "kek", tmp_path / "vault.db"
    env = {"TUTOR_STATE_DIR": str(tmp_path), "TUTOR_VAULT_KEK_FILE": str(kek),
           "TUTOR__PRIVACY__VAULT_SQLITE_PATH": str(vault)}
    missing = _cli("privacy", "rotate-kek", env=env)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    ensure_key_file(kek)
    learner, _, _ = Vault(vault, KeyEncryptionKeys.load(kek)).register("acme", "local", {"display_name": "A"})
    rotated = _cli("privacy", "rotate-kek", env=env)
    assert rotated.returncode == 0 and "k2" in rotated.stdout and "1 tenant data key(s) re-wrapped" in rotated.stdout
    newest = kek.read_text().splitlines()[0]
    kek.write_text(newest + "\n")  # the old key removed: the vault still opens
    only_new = Vault(vault, KeyEncryptionKeys.load(kek))
    entry = only_new.entry("acme", learner)
    assert entry is not None and only_new.profile(entry) == {"display_name": "A"}


def test_commands_on_one_regions_files_need_the_region_when_there_are_several(tmp_path) -> None:
    from tutor_cluster.config.settings import SHIPPED_CONFIGS

    config = tmp_path / "regions.yaml"
    config.write_text(f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nknowledge: {{enabled: false}}\n"
                      f"privacy: {{audit_sqlite_path: {tmp_path / 'audit.db'}}}\nregions: {{eu: {{}}, us: {{}}}}\n")
    for command in (["audit", "verify"], ["privacy", "show"], ["privacy", "rotate-key"], ["privacy", "rotate-kek"]):
        out = _cli(*command, "--config", str(config))
        assert out.returncode == 2 and "--region" in out.stderr and "eu, us" in out.stderr, (command, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
        wrong = _cli(*command, "--config", str(config), "--region", "mars")
        assert wrong.returncode == 2 and "'mars' is not a region" in wrong.stderr, wrong.stderr
    us = _cli("audit", "verify", "--config", str(config), "--region", "us")  # us's own log: none written yet
    assert us.returncode == 2 and str(tmp_path / "regions" / "us" / "audit.db") in us.stderr, us.stderr
