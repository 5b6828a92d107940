"""The serve snapshot's per-user tables split into one set of Parquet files per scoring shard.

A shard that read its users straight from the warehouse filtered every row of each per-user
table by the hash bucket of its user id. Its rows are spread over the whole table, so each
shard decompressed all of it, and scoring cost shards x table size: quadratic in users, as
the shard count grows with them (on `large`, 40 shards spent 193 s loading, half of it in
that waste). One pass here writes each table partitioned by shard; a shard then reads only
its own rows (`snapshot_arrays(..., shard_inputs=...)`).

The files live under `<warehouse dir>/shard-inputs/<id>/` for one recommend run (Dask workers
reach them where they reach the warehouse) and are removed with `discard_shard_inputs`;
inputs a killed run left behind are removed by the next run (one writer per data directory).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb

from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.features.snapshot_arrays import USER_BUCKET, USER_TABLE_COLUMNS

SHARD_INPUTS_DIR = "shard-inputs"


def shard_inputs(warehouse: Path, n_shards: int, snapshot: str = "serve") -> str:
    """Write `snapshot`'s per-user tables split into `n_shards` hash buckets of user ids (the
    buckets `snapshot_arrays(shard=(i, n_shards))` loads); returns their directory."""
    root = Path(warehouse).parent / SHARD_INPUTS_DIR
    shutil.rmtree(root, ignore_errors=True)
    out = root / uuid.uuid4().hex[:12]
    out.mkdir(parents=True)
    with (
        stage("shard_inputs", part=snapshot) as st,
        duckdb.connect(str(warehouse), read_only=True) as con,
    ):
        rows = 0
        for table, columns in USER_TABLE_COLUMNS.items():
            rows += con.execute(
                f"copy (select {columns}, {USER_BUCKET} as shard "
                f"from {snapshot}.{table}) to $path (format parquet, partition_by (shard))",
                {"n_shards": int(n_shards), "path": str(out / table)},
            ).fetchone()[0]
        st.rows_out = rows
    return str(out)


def discard_shard_inputs(path: str | None) -> None:
    """Remove the files `shard_inputs` wrote (nothing for None)."""
    if path:
        shutil.rmtree(path, ignore_errors=True)
