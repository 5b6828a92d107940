"""Point-in-time feature tables in `warehouse.duckdb`, one SQL file each.

A snapshot (`serve`, `train`, `eval`) is a DuckDB schema holding every feature table computed
as of one cutoff: events at or after the cutoff are invisible (they are filtered once, in
`sql/staging/events_asof.sql`). Snapshot and table names come from the fixed sets below.

A snapshot remembers what it was built from (table `_build`: a key over the lake's content,
the cutoff, the settings, the tables and their SQL). Asked again for the same key, it is kept
as it is, so `recpipe run`'s recommend step does not redo the serve snapshot its train step
just built; any change to one of those inputs rebuilds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from recpipe.tasks.common.sql_files import create_table, sql_text
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.ingest import event_lake
from recpipe.tasks.ingest.lake_cutoffs import lake_fingerprint

logger = logging.getLogger(__name__)

SNAPSHOTS = ("serve", "train", "eval", *(f"train_{j}" for j in range(1, 8)))
"""Schemas of the warehouse: `train_<j>` are the earlier training windows a small shop stacks."""
MEMORY_SHARE = 0.4
"""Share of the machine's memory a feature build may hold before DuckDB spills to disk. The
per-pair group-by of a 100M-event log holds about 50M groups: under the 3 GB cap this replaced
it spilled up to 15 GB, and the four heaviest steps of the `large` serve snapshot took 177 and
181 s against 154 and 154 s with 40% of 24 GiB (interleaved runs, 10.1 GB peak); a 10M-event
build peaks near 3 GB under either."""


def _memory_limit(share: float = MEMORY_SHARE) -> str:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1024, int(total * share) >> 20)}MB"


# Row order of the feature tables carries no meaning, so DuckDB need not preserve it.
DUCKDB_CONFIG = {"preserve_insertion_order": False, "memory_limit": _memory_limit()}
FEATURE_TABLES = (
    "user_features",
    "item_features",
    "user_category_affinity",
    "user_item_features",
    "item_covisitation",
    "user_universe",
)


@config_dataclass(frozen=True)
class FeatureConfig:
    """Windows and weights the feature SQL takes as parameters (the one place of their defaults).

    `event_weights` has no default here: it is pipeline-wide (`Settings.event_weights`), as
    ingestion accepts exactly its event types.
    """

    event_weights: dict[str, float]
    half_life_days: float = Field(14.0, gt=0, description="Half-life of time decay for interest.")
    short_days: float = Field(7.0, gt=0, description="Short-term window of the drift signal.")
    session_gap_minutes: int = Field(30, ge=1, description="A gap this long starts a new session.")
    covis_days: float = Field(30.0, gt=0, description="Window of co-visitation pairs.")
    covis_top_n: int = Field(50, ge=1, le=1000, description="Neighbours kept per item.")
    max_session_items: int = Field(
        30, ge=2, description="Items of a session counted for co-visitation."
    )


@dataclass
class FeatureTablesResult:
    """Where a snapshot was written, its cutoff, and rows and seconds per table."""

    warehouse: str
    snapshot: str
    as_of: datetime
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False  # the snapshot was already built from the same inputs: kept as it was


def attach_lake(
    con: duckdb.DuckDBPyConnection, lake_dir: Path, id_types: dict[str, str] | None = None
) -> dict[str, str]:
    """Temp views `lake_events`, `catalog` and `known_users` over the manifest's files.

    Empty (typed) views stand in when the lake has no items or users file. Returns id types.
    """
    manifest = event_lake.read_manifest(lake_dir)
    types = dict(id_types or manifest.id_types)
    ut, it = types.get("user_id", "BIGINT"), types.get("item_id", "BIGINT")
    if ut not in ("BIGINT", "VARCHAR") or it not in ("BIGINT", "VARCHAR"):
        raise ValueError(f"unexpected id types {types}")
    events = event_lake.lake_paths(lake_dir, "events")
    if events:
        con.read_parquet(events, hive_partitioning=False).create_view("lake_events", replace=True)
    else:
        con.sql(
            f"select null::{ut} as user_id, null::{it} as item_id, null::varchar as event_type, "
            "null::timestamp as ts, null::varchar as session_id, null::double as price, "
            "null::double as quantity where false"
        ).create_view("lake_events", replace=True)
    items = event_lake.lake_paths(lake_dir, "items")
    if items:
        con.read_parquet(items).create_view("catalog", replace=True)
    else:
        con.sql(
            f"select null::{it} as item_id, null::varchar as category, null::varchar as brand, "
            "null::double as price, true as available, null::timestamp as created_at "
            "where false"
        ).create_view("catalog", replace=True)
    users = event_lake.lake_paths(lake_dir, "users")
    if users:
        con.read_parquet(users).create_view("known_users", replace=True)
    else:
        con.sql(
            f"select null::{ut} as user_id, null::timestamp as signup_ts where false"
        ).create_view("known_users", replace=True)
    return {"user_id": ut, "item_id": it}


def events_asof(con: duckdb.DuckDBPyConnection, as_of: datetime, cfg: FeatureConfig) -> int:
    """Temp tables `events_asof` (lake events strictly before `as_of`, enriched) and
    `user_items_asof` (its per-(user, item) totals, which several feature tables share).

    Returns the number of events.
    """
    params = {
        "as_of": as_of,
        "event_types": list(cfg.event_weights),
        "event_weights": [float(w) for w in cfg.event_weights.values()],
        "half_life_days": float(cfg.half_life_days),
        "session_gap_minutes": int(cfg.session_gap_minutes),
    }
    t0 = time.perf_counter()
    with stage("features.events_asof") as st:
        n = st.rows_out = create_table(con, "events_asof", "staging/events_asof", params, temp=True)
    t1 = time.perf_counter()
    with stage("features.user_items_asof", rows_in=n) as st:
        pairs = st.rows_out = create_table(
            con, "user_items_asof", "staging/user_items_asof", temp=True
        )
    logger.info(
        "events_asof: %d rows in %.1fs; user_items_asof: %d rows in %.1fs",
        n,
        t1 - t0,
        pairs,
        time.perf_counter() - t1,
    )
    return n


BUILD_MARK = "_build"
"""One-row table in a snapshot's schema: the key of the inputs its tables were built from."""
STAGING_SQL = ("staging/events_asof", "staging/user_items_asof")


def snapshot_key(
    lake_dir: Path, as_of: datetime, cfg: FeatureConfig, tables: tuple[str, ...]
) -> str:
    """Hash of everything a snapshot's tables depend on: the lake's content, the cutoff, the
    feature settings, the tables asked for and the text of their SQL."""
    sql = [sql_text(name) for name in (*STAGING_SQL, *(f"features/{t}" for t in tables))]
    parts = [lake_fingerprint(lake_dir), as_of.isoformat(), dataclasses.asdict(cfg), tables, sql]
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _built_with(
    con: duckdb.DuckDBPyConnection, snapshot: str, tables: tuple[str, ...]
) -> str | None:
    """The key `snapshot` was last built with, if its build finished and every table is there."""
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = $s",
            {"s": snapshot},
        ).fetchall()
    }
    if BUILD_MARK not in present or not set(tables) <= present:
        return None
    row = con.execute(f"select key from {snapshot}.{BUILD_MARK}").fetchone()
    return row[0] if row else None


def feature_tables(
    lake_dir: Path,
    warehouse: Path,
    as_of: datetime,
    snapshot: str,
    cfg: FeatureConfig,
    tables: tuple[str, ...] = FEATURE_TABLES,
) -> FeatureTablesResult:
    """Build every feature table of `snapshot` as of `as_of` into `warehouse`."""
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"snapshot must be one of {SNAPSHOTS}, not {snapshot!r}")
    unknown = set(tables) - set(FEATURE_TABLES)
    if unknown:
        raise ValueError(f"unknown feature tables {sorted(unknown)}")
    warehouse = Path(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    result = FeatureTablesResult(warehouse=str(warehouse), snapshot=snapshot, as_of=as_of)
    params = {
        "as_of": as_of,
        "short_days": float(cfg.short_days),
        "covis_days": float(cfg.covis_days),
        "top_n": int(cfg.covis_top_n),
        "max_session_items": int(cfg.max_session_items),
    }
    key = snapshot_key(lake_dir, as_of, cfg, tables)
    with (
        stage("features", part=snapshot),
        duckdb.connect(str(warehouse), config=DUCKDB_CONFIG) as con,
    ):
        if _built_with(con, snapshot, tables) == key:
            for name in tables:
                result.rows[name] = con.execute(
                    f"select count(*) from {snapshot}.{name}"
                ).fetchone()[0]
            result.reused = True
            logger.info(
                "%s snapshot as of %s was built from the same lake, settings and SQL: kept",
                snapshot,
                as_of,
            )
            return result
        # the mark goes first, so a build that stops half way is never taken for a finished one
        con.execute(f"create schema if not exists {snapshot}")
        con.execute(f"drop table if exists {snapshot}.{BUILD_MARK}")
        attach_lake(con, lake_dir)
        t0 = time.perf_counter()
        result.rows["events_asof"] = events_asof(con, as_of, cfg)
        result.seconds["events_asof"] = time.perf_counter() - t0
        for name in tables:
            t0 = time.perf_counter()
            with stage(f"features.{name}", part=snapshot) as st:
                result.rows[name] = st.rows_out = create_table(
                    con, f"{snapshot}.{name}", f"features/{name}", params
                )
            result.seconds[name] = time.perf_counter() - t0
            logger.info(
                "%s.%s: %d rows in %.1fs", snapshot, name, result.rows[name], result.seconds[name]
            )
        con.execute(
            f"create table {snapshot}.{BUILD_MARK} as select $key as key, now() as built_at",
            {"key": key},
        )
    return result
