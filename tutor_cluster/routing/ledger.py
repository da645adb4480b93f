"""The spend ledger's Parquet export: one row per model interaction, partitioned by date (UTC).

Schema (also in README): ``at`` timestamp[ms, UTC], ``date`` (partition), ``request_id``, ``tenant``,
``class_id``, ``learner`` (pseudonymous), ``model``, ``tier``, ``prompt_tokens``, ``completion_tokens``, ``cost``,
``currency``, ``policy``, ``reason``, ``small_ok`` (cascade outcome, null otherwise), ``features`` (JSON text).
Readable by pandas (``pd.read_parquet(dir)``) and DuckDB (``read_parquet('dir/**/*.parquet', hive_partitioning=1)``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    ("at", pa.timestamp("ms", tz="UTC")), ("date", pa.string()), ("request_id", pa.string()),
    ("tenant", pa.string()), ("class_id", pa.string()), ("learner", pa.string()), ("model", pa.string()),
    ("tier", pa.string()), ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("cost", pa.float64()),
    ("currency", pa.string()), ("policy", pa.string()), ("reason", pa.string()), ("small_ok", pa.bool_()),
    ("features", pa.string()),
])


def to_table(entries: Iterable[dict[str, Any]]) -> pa.Table:
    rows = []
    for e in entries:
        at = datetime.fromtimestamp(float(e["at"]), tz=timezone.utc)
        rows.append({**{f.name: e.get(f.name) for f in SCHEMA}, "at": at, "date": at.strftime("%Y-%m-%d"),
                     "features": json.dumps(e.get("features") or {}, sort_keys=True)})
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def export_parquet(entries: Iterable[dict[str, Any]], out: str | Path) -> int:
    """Write (or overwrite the partitions of) a Parquet dataset; returns the number of rows."""
    table = to_table(entries)
    Path(out).mkdir(parents=True, exist_ok=True)
    if table.num_rows:
        pq.write_to_dataset(table, root_path=str(out), partition_cols=["date"],
                            existing_data_behavior="delete_matching")
    return table.num_rows
