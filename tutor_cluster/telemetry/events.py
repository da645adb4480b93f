"""Interaction events for learning analytics: one row per tutoring turn, written as Parquet partitioned by date
and region, pseudonymous (learner and session ids are keyed hashes; no message text).

Each gateway replica buffers events and writes a part file every ``flush_interval_s`` (or ``max_buffer``
events, or at shutdown) to ``<path>/date=YYYY-MM-DD/region=<region>/part-<host>-<pid>-<n>.parquet``: a Hive-style
dataset that pandas (``pd.read_parquet(path)``), DuckDB (``read_parquet('path/**/*.parquet',
hive_partitioning=1)``) and Spark read as is. Schema: :data:`SCHEMA` (documented in README).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tutor_cluster.config.telemetry import EventsConfig

SCHEMA = pa.schema([
    ("at", pa.timestamp("ms", tz="UTC")), ("turn_id", pa.string()), ("tenant", pa.string()),
    ("learner", pa.string()), ("session", pa.string()), ("skill", pa.string()), ("intent", pa.string()),
    ("exercise_id", pa.string()), ("tier", pa.string()), ("model", pa.string()), ("correct", pa.bool_()),
    ("misconceptions", pa.list_(pa.string())), ("hint", pa.bool_()), ("mastery_before", pa.float64()),
    ("mastery_after", pa.float64()), ("mastered", pa.bool_()), ("attempts", pa.int64()), ("cost", pa.float64()),
    ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("citations", pa.int64()),
    ("latency_total_ms", pa.float64()), ("latency_edge_ms", pa.float64()), ("latency_core_ms", pa.float64()),
])
PARTITIONS = ["date", "region"]


class EventSink:
    """Buffers events; writes Parquet parts. Thread-safe; ``flush`` is also called by a background timer."""

    def __init__(self, config: EventsConfig, *, clock: Any = time.time) -> None:
        self.config = config
        self._clock = clock
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._parts = 0
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def start(self) -> None:
        if self.config.enabled and self._timer is None:
            self._timer = threading.Thread(target=self._tick, daemon=True, name="events-flush")
            self._timer.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.config.flush_interval_s):
            self.flush()

    def add(self, event: dict[str, Any]) -> None:
        if not self.config.enabled:
            return
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self.config.max_buffer
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        written = 0
        for (date, region), part in _by_partition(rows, self.config.region).items():
            folder = Path(self.config.path).expanduser() / f"date={date}" / f"region={region}"
            folder.mkdir(parents=True, exist_ok=True)
            self._parts += 1
            tmp = folder / f".part-{self._prefix}-{self._parts}.parquet.tmp"
            pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), tmp)
            tmp.rename(folder / f"part-{self._prefix}-{self._parts}.parquet")  # readers never see half a file
            written += len(part)
        return written

    def close(self) -> None:
        self._stop.set()
        self.flush()


def _by_partition(rows: list[dict[str, Any]], region: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        at = row["at"] if isinstance(row["at"], datetime) else datetime.fromtimestamp(row["at"], tz=timezone.utc)
        out.setdefault((at.strftime("%Y-%m-%d"), row.get("region", region)), []).append(
            {**{f.name: row.get(f.name) for f in SCHEMA}, "at": at})
    return out


def read_events(path: str | Path) -> Any:
    """The dataset as a pandas DataFrame (partition columns included)."""
    import pyarrow.dataset as ds

    return ds.dataset(Path(path).expanduser(), format="parquet", partitioning="hive").to_table().to_pandas()


def expire_partitions(path: str | Path, before: float, region: str | None = None,
                      besides: frozenset[str] = frozenset()) -> int:
    """Delete the whole-day partitions (``date=YYYY-MM-DD``; with ``region``, only that region's part of each;
    with ``besides``, the parts of every region but those) that ended before ``before`` (Unix time); returns the
    rows they held."""
    root = Path(path).expanduser()
    rows = 0
    for folder in sorted(root.glob("date=*")) if root.is_dir() else []:
        try:
            day = datetime.strptime(folder.name[len("date="):], "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            continue  # not one of ours
        if (day + timedelta(days=1)).timestamp() > before:
            continue
        if besides:
            targets = [p for p in folder.glob("region=*") if p.name[len("region="):] not in besides]
        else:
            targets = [folder if region is None else folder / f"region={region}"]
        for target in (t for t in targets if t.is_dir()):
            rows += sum(pq.ParquetFile(f).metadata.num_rows for f in target.rglob("*.parquet"))
            shutil.rmtree(target)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return rows
