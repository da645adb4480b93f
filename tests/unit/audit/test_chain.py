"""The disclosure audit trail's hash chain (audit/chain.py, audit/log.py) and `tutor-cluster audit verify`:
an untouched log verifies; an edited, removed or moved record is named (exit 1)."""

import asyncio
import json
import sqlite3
import subprocess
import sys

import pytest

from tests.unit.stand_ins import TEST_PSEUDONYMS
from tutor_cluster.audit.chain import verify
from tutor_cluster.audit.log import AuditLog, AuditStore, read_checkpoint, read_records
from tutor_cluster.errors import Unavailable
from tutor_cluster.identity import Principal

TEACHER = Principal(key_id="t-key", tenant="acme", role="teacher", scopes=frozenset({"tutor"}))


def _log(path, n: int = 5) -> AuditStore:
    store = AuditStore(path)
    log = AuditLog(store)
    for i in range(n):
        asyncio.run(log.record(TEACHER, TEST_PSEUDONYMS.pseudonym("acme", f"learner-{i % 2}"), action="read", resource="learner memory",
                               route="GET /v1/learners/{learner_id}"))
    return store


def _tamper(path, *statements: tuple[str, tuple]) -> None:
    """Edit the file behind the log's back (the triggers that refuse UPDATE/DELETE dropped first)."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql, params in statements:
        db.execute(sql, params)
    db.commit()
    db.close()


def _verify_cli(path, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    config = tmp_path / "settings.yaml"
    config.write_text(f"catalogue: models.yaml\nexercises: exercises.yaml\nprivacy: {{audit_sqlite_path: {path}}}\n")
    return subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "audit", "verify", "--config", str(config),
                           *extra], capture_output=True, text=True, timeout=120)


def test_records_chain_and_name_the_learner_only_by_pseudonym(tmp_path) -> None:
    _log(tmp_path / "audit.db").close()
    records = list(read_records(tmp_path / "audit.db"))
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5] and records[0]["prev"] == "0" * 64
    assert all(r["prev"] == p["hash"] for p, r in zip(records, records[1:]))
    assert records[0]["subject"] == TEST_PSEUDONYMS.pseudonym("acme", "learner-0")
    assert "learner-0" not in json.dumps(records)
    assert records[0]["purpose"] == "instruction" and records[0]["actor"] == "t-key"
    problem, head, n = verify(records)
    assert problem is None and n == 5 and head == records[-1]["hash"]


def test_the_log_refuses_updates_and_deletes(tmp_path) -> None:
    store = _log(tmp_path / "audit.db", 2)
    db = sqlite3.connect(tmp_path / "audit.db")
    for sql in ("UPDATE audit SET record = '{}' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    store.close()


def _edit(path) -> None:
    row = json.loads(sqlite3.connect(path).execute("SELECT record FROM audit WHERE seq = 3").fetchone()[0])
    row["actor"] = "someone-else"
    _tamper(path, ("UPDATE audit SET record = ? WHERE seq = 3", (json.dumps(row),)))


def _remove(path) -> None:
    _tamper(path, ("DELETE FROM audit WHERE seq = 3", ()))


def _reorder(path) -> None:
    db = sqlite3.connect(path)
    three, four = (db.execute("SELECT record FROM audit WHERE seq = ?", (s,)).fetchone()[0] for s in (3, 4))
    _tamper(path, ("UPDATE audit SET record = ? WHERE pos = 3", (four,)), ("UPDATE audit SET record = ? WHERE pos = 4",
                                                                          (three,)))


def _rehash_edit(path) -> None:
    """An edit whose own hash is recomputed: the next record's prev no longer matches it."""
    from tutor_cluster.audit.chain import digest

    row = json.loads(sqlite3.connect(path).execute("SELECT record FROM audit WHERE seq = 3").fetchone()[0])
    row["purpose"] = "nothing to see"
    row["hash"] = digest(row)
    _tamper(path, ("UPDATE audit SET record = ? WHERE seq = 3", (json.dumps(row),)))


@pytest.mark.parametrize(("tamper", "named"), [(_edit, "record 3 (seq 3)"), (_remove, "record 3 (seq 4)"),
                                               (_reorder, "record 3 (seq 4)"), (_rehash_edit, "record 4 (seq 4)")])
def test_verify_names_the_first_bad_record(tmp_path, tamper, named) -> None:
    path = tmp_path / "audit.db"
    _log(path).close()
    ok = _verify_cli(path, tmp_path)
    assert ok.returncode == 0 and "5 records intact" in ok.stdout, ok.stderr
    head = ok.stdout.strip().rsplit(" ", 1)[1]
    tamper(path)
    bad = _verify_cli(path, tmp_path)
    assert "audit_no_update" not in str(sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall())  # verifying wrote nothing back
    assert bad.returncode == 1 and named in bad.stderr and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert _verify_cli(path, tmp_path, "--expect-head", head).returncode == 1


def test_an_edited_end_is_caught_against_the_published_head(tmp_path) -> None:
    path = tmp_path / "audit.db"
    _log(path).close()
    head = _verify_cli(path, tmp_path).stdout.strip().rsplit(" ", 1)[1]
    from tutor_cluster.audit.chain import digest

    row = json.loads(sqlite3.connect(path).execute("SELECT record FROM audit WHERE seq = 5").fetchone()[0])
    row["actor"], row["hash"] = "someone-else", None
    row["hash"] = digest(row)
    _tamper(path, ("UPDATE audit SET record = ? WHERE seq = 5", (json.dumps(row),)))
    assert _verify_cli(path, tmp_path).returncode == 0  # the chain alone cannot see it…
    caught = _verify_cli(path, tmp_path, "--expect-head", head)
    assert caught.returncode == 1 and "the end was edited or cut" in caught.stderr  # …the published head can


def test_no_log_a_corrupt_file_or_a_bad_head_is_exit_2(tmp_path) -> None:
    assert _verify_cli(tmp_path / "absent.db", tmp_path).returncode == 2
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    junk = _verify_cli(tmp_path / "junk.db", tmp_path)
    assert junk.returncode == 2 and junk.stderr.strip().count("\n") == 0, junk.stderr
    _log(tmp_path / "audit.db", 1).close()
    assert _verify_cli(tmp_path / "audit.db", tmp_path, "--expect-head", "xyz").returncode == 2


def test_an_unwritable_log_fails_the_access_rather_than_skip_it(tmp_path) -> None:
    store = _log(tmp_path / "audit.db", 1)
    store.close()  # every later write fails
    with pytest.raises(Unavailable) as exc:
        asyncio.run(AuditLog(store).record(TEACHER, "l", action="read", resource="x", route="r"))
    assert exc.value.kind == "audit_unavailable"


def _dated(path, days: list[int]) -> AuditStore:
    """A log whose records were written on the given days of December 2026 (oldest first)."""
    store = AuditStore(path)
    for day in days:
        store.append({"at": f"2026-12-{day:02d}T09:00:00.000+00:00", "actor": "t-key", "role": "teacher",
                      "tenant": "acme", "action": "read", "resource": "learner memory", "subject": f"k1-{day}",
                      "purpose": "instruction", "route": "GET /v1/learners/{learner_id}"})
    return store


def test_retention_removes_the_oldest_records_and_the_rest_still_verifies(tmp_path) -> None:
    path = tmp_path / "audit.db"
    store = _dated(path, [1, 2, 3, 4, 5])
    assert store.expire("2026-12-01T00:00:00.000+00:00") == 0  # nothing that old
    assert store.expire("2026-12-03T00:00:00.000+00:00") == 2
    assert [r["seq"] for r in read_records(path)] == [3, 4, 5] and read_checkpoint(path)[::2] == (2, 2)
    store.append({"at": "2026-12-06T09:00:00.000+00:00", "actor": "t-key", "role": "teacher", "tenant": "acme",
                  "action": "read", "resource": "x", "subject": "k1-6", "purpose": "instruction", "route": "r"})
    assert store.expire("2026-12-04T00:00:00.000+00:00") == 1  # the count of all expired keeps adding up
    store.close()
    ok = _verify_cli(path, tmp_path)
    assert ok.returncode == 0 and "3 records intact after 3 expired by retention (checkpoint seq 3" in ok.stdout, ok
    with pytest.raises(sqlite3.IntegrityError):  # outside retention the log is append-only again
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM audit WHERE seq = 6")


@pytest.mark.parametrize(("tamper", "named"), [
    (("DELETE FROM audit WHERE seq = 4", ()), "expected seq 4"),  # the first record kept removed
    (("UPDATE audit_checkpoint SET hash = ?", ("f" * 64,)), "its prev does not match"),  # a forged checkpoint
])
def test_after_retention_removing_or_forging_is_still_named(tmp_path, tamper, named) -> None:
    path = tmp_path / "audit.db"
    store = _dated(path, [1, 2, 3, 4, 5])
    store.expire("2026-12-04T00:00:00.000+00:00")
    store.close()
    _tamper(path, tamper)
    bad = _verify_cli(path, tmp_path)
    assert bad.returncode == 1 and named in bad.stderr, bad.stderr
