"""Making Redis forget on disk: after a deletion of learner data (erasure, retention), the append-only file still
holds the deleted values until it is rewritten. :func:`rewrite_aof` asks for a rewrite that starts *after* the
deletion: a rewrite already running copies the data as it was when it began, so we wait for it and ask again."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: How long to wait for a running rewrite before asking for ours (seconds).
REWRITE_WAIT_S = 30.0


def rewrite_aof(client: Any, *, wait_s: float = REWRITE_WAIT_S, clock: Any = time.monotonic) -> bool:
    """Ask ``client`` (a redis-py client) for an AOF rewrite that begins after now. True when one was started or
    scheduled; False (logged) when the server refuses the command (e.g. a managed Redis that disables it) or a
    running rewrite outlasted ``wait_s`` — the deleted values then leave the disk at the next rewrite."""
    import redis

    deadline = clock() + wait_s
    while True:
        try:
            client.bgrewriteaof()  # "started" or "scheduled" (after a running RDB save): both begin after now
            return True
        except redis.ResponseError as exc:
            if "in progress" not in str(exc):
                log.warning("redis refused BGREWRITEAOF (%s): deleted values stay in its append-only file until "
                            "its next rewrite", exc)
                return False
        if clock() > deadline:
            log.warning("an AOF rewrite ran longer than %.0f s: deleted values leave the disk at the next one", wait_s)
            return False
        time.sleep(0.05)


def display_url(url: str) -> str:
    """A Redis URL for messages and logs: scheme, host, port and database, never the credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
