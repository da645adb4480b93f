"""`tutor-cluster audit verify`: check the disclosure audit trail's hash chain."""

from __future__ import annotations

import argparse
import re

from tutor_cluster.cli.commands import CliError, _region_settings


def audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 and the head hash when every record is intact; exit 1 naming the first edited, removed or moved
    record; exit 2 when there is no log to read."""
    import sqlite3

    import redis

    from tutor_cluster.audit.chain import GENESIS, verify
    from tutor_cluster.audit.log import read_checkpoint, read_records
    from tutor_cluster.audit.redis_store import RedisAuditStore

    if args.expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", args.expect_head):
        raise CliError("--expect-head: the 64 hex digits `audit verify` printed", 2)
    settings = _region_settings(args.config, args.region)
    privacy = settings.privacy
    try:
        if privacy.audit_redis_url:
            store = RedisAuditStore(privacy.audit_redis_url, prefix=privacy.audit_redis_prefix)
            where = store.path
            try:
                if not store.exists():
                    raise CliError(f"no audit log at {where} (privacy.audit_redis_url)", 2)
                checkpoint, records = store.snapshot()
            finally:
                store.close()
        else:
            path = where = privacy.audit_path()
            if not path.is_file():
                raise CliError(f"no audit log at {path} (privacy.audit_sqlite_path)", 2)
            checkpoint, records = read_checkpoint(path), read_records(path)
        start = checkpoint[:2] if checkpoint else (0, GENESIS)
        problem, head, n = verify(records, expect_head=args.expect_head, start=start)
    except (sqlite3.DatabaseError, redis.RedisError) as exc:
        raise CliError(f"audit log {where} cannot be read as an audit log: {exc}", 2) from None
    if problem is not None:
        raise CliError(f"audit log {where}: {problem}", 1)
    expired = (f" after {checkpoint[2]} expired by retention (checkpoint seq {checkpoint[0]}, {checkpoint[1]})"
               if checkpoint else "")
    print(f"audit log {where}: {n} records intact{expired}; head {head}")
    return 0
