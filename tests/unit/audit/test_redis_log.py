"""The audit log on a real redis-server (``privacy.audit_redis_url``): gateway replicas on several nodes extend
one hash chain (never a fork), the audit route's reads, retention with its checkpoint, and `tutor-cluster audit
verify` naming an edited, removed or moved record — as for the SQLite log (test_chain.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import redis

from tutor_cluster.audit.chain import digest, verify
from tutor_cluster.audit.log import AuditLog
from tutor_cluster.audit.redis_store import RedisAuditStore
from tutor_cluster.errors import Unavailable
from tutor_cluster.identity import Principal
from tutor_cluster.redis_aof import display_url

TEACHER = Principal(key_id="t-key", tenant="acme", role="teacher", scopes=frozenset({"tutor"}))


@pytest.fixture()
def prefix() -> str:
    return f"audit-{uuid.uuid4().hex[:8]}"


def _fields(day: int, subject: str, tenant: str = "acme") -> dict[str, str]:
    return {"at": f"2026-12-{day:02d}T09:00:00.000+00:00", "actor": "t-key", "role": "teacher", "tenant": tenant,
            "action": "read", "resource": "learner memory", "subject": subject, "purpose": "instruction",
            "route": "GET /v1/learners/{learner_id}"}


def _verify_cli(url: str, prefix: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps({"catalogue": "models.yaml", "exercises": "exercises.yaml",
                                  "privacy": {"audit_redis_url": url, "audit_redis_prefix": prefix}}))
    return subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "audit", "verify", "--config",
                           str(config), *extra], capture_output=True, text=True, timeout=120)


def test_replicas_on_several_nodes_extend_one_chain(redis_server, prefix: str) -> None:
    """Three stores (three gateway nodes) appending at once from several threads each: one chain, no fork, no
    lost record; the audit route finds each learner's records, newest first."""
    stores = [RedisAuditStore(redis_server.url, prefix=prefix) for _ in range(3)]
    per_thread, threads = 25, []
    for n, store in enumerate(stores):
        for t in range(2):
            def write(store: RedisAuditStore = store, who: str = f"k1-node{n}-{t}") -> None:
                log = AuditLog(store)
                for _ in range(per_thread):
                    asyncio.run(log.record(TEACHER, who, action="read", resource="learner memory", route="r"))
            threads.append(threading.Thread(target=write))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    checkpoint, records = stores[0].snapshot()
    records = list(records)
    assert checkpoint is None and len(records) == per_thread * len(threads)
    problem, head, n = verify(records)
    assert problem is None and n == len(records) and head == records[-1]["hash"]
    mine = stores[1].about("acme", ["k1-node1-0"], 10)
    assert len(mine) == 10 and all(r["subject"] == "k1-node1-0" for r in mine)
    assert [r["seq"] for r in mine] == sorted((r["seq"] for r in mine), reverse=True)
    assert len(stores[2].about("acme", ["k1-node1-0", "k1-node2-1"], 1000)) == 2 * per_thread
    assert stores[0].about("globex", ["k1-node1-0"], 10) == []  # tenant-scoped


def _edit(client: redis.Redis, key: str) -> None:
    row = json.loads(client.lindex(key, 2))
    row["actor"] = "someone-else"
    client.lset(key, 2, json.dumps(row))


def _remove(client: redis.Redis, key: str) -> None:
    client.lrem(key, 1, client.lindex(key, 2))


def _reorder(client: redis.Redis, key: str) -> None:
    three, four = client.lindex(key, 2), client.lindex(key, 3)
    client.lset(key, 2, four)
    client.lset(key, 3, three)


def _rehash_edit(client: redis.Redis, key: str) -> None:
    row = json.loads(client.lindex(key, 2))
    row["purpose"] = "nothing to see"
    row["hash"] = digest(row)
    client.lset(key, 2, json.dumps(row))


@pytest.mark.parametrize(("tamper", "named"), [(_edit, "record 3 (seq 3)"), (_remove, "record 3 (seq 4)"),
                                               (_reorder, "record 3 (seq 4)"), (_rehash_edit, "record 4 (seq 4)")])
def test_verify_names_the_first_bad_record(redis_server, prefix: str, tmp_path: Path, tamper, named) -> None:
    store = RedisAuditStore(redis_server.url, prefix=prefix)
    for day in range(1, 6):
        store.append(_fields(day, f"k1-{day}"))
    ok = _verify_cli(redis_server.url, prefix, tmp_path)
    assert ok.returncode == 0 and "5 records intact" in ok.stdout, ok.stderr
    head = ok.stdout.strip().rsplit(" ", 1)[1]
    tamper(redis.Redis.from_url(redis_server.url), f"{prefix}:log")
    bad = _verify_cli(redis_server.url, prefix, tmp_path)
    assert bad.returncode == 1 and named in bad.stderr and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert _verify_cli(redis_server.url, prefix, tmp_path, "--expect-head", head).returncode == 1


def test_retention_keeps_a_checkpoint_and_what_is_kept_still_verifies(redis_server, prefix: str,
                                                                      tmp_path: Path) -> None:
    store = RedisAuditStore(redis_server.url, prefix=prefix)
    for day in range(1, 6):
        store.append(_fields(day, "k1-same" if day in (1, 4) else f"k1-{day}"))
    assert store.expire("2026-12-01T00:00:00.000+00:00") == 0
    assert store.expire("2026-12-03T00:00:00.000+00:00") == 2
    checkpoint, records = store.snapshot()
    assert checkpoint[::2] == (2, 2) and [r["seq"] for r in records] == [3, 4, 5]
    assert [r["seq"] for r in store.about("acme", ["k1-same"], 10)] == [4]  # the expired one is gone from reads
    other_node = RedisAuditStore(redis_server.url, prefix=prefix)  # links after the kept head, not the checkpoint
    other_node.append(_fields(6, "k1-6"))
    assert store.expire("2026-12-04T00:00:00.000+00:00") == 1
    ok = _verify_cli(redis_server.url, prefix, tmp_path)
    assert ok.returncode == 0 and "3 records intact after 3 expired by retention (checkpoint seq 3" in ok.stdout, ok
    client = redis.Redis.from_url(redis_server.url)
    client.hset(f"{prefix}:cp", "hash", "f" * 64)  # a forged checkpoint
    bad = _verify_cli(redis_server.url, prefix, tmp_path)
    assert bad.returncode == 1 and "its prev does not match" in bad.stderr, bad.stderr


def test_an_unreachable_log_fails_the_access_and_verify_is_exit_2(tmp_path: Path, prefix: str) -> None:
    dead = "redis://127.0.0.1:1/0"
    log = AuditLog(RedisAuditStore(dead, prefix=prefix, timeout_s=0.5))
    with pytest.raises(Unavailable) as exc:
        asyncio.run(log.record(TEACHER, "k1-x", action="read", resource="x", route="r"))
    assert exc.value.kind == "audit_unavailable"
    with pytest.raises(Unavailable):
        asyncio.run(log.about("acme", ["k1-x"], 10))
    cli = _verify_cli(dead, prefix, tmp_path)
    assert cli.returncode == 2 and cli.stderr.strip().count("\n") == 0, cli.stderr


def test_messages_name_a_redis_url_without_its_credentials() -> None:
    assert display_url("rediss://tutor:s3cr3t-pw@redis.eu.internal:6380/2") == "rediss://redis.eu.internal:6380/2"
    assert "s3cr3t" not in RedisAuditStore("redis://:s3cr3t@127.0.0.1:1/0").path
