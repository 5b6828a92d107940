"""Hand-made event frames and a DuckDB connection that runs feature SQL over them."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from recpipe.tasks.common.sql_files import create_table
from recpipe.tasks.features.feature_tables import FeatureConfig, events_asof

WEIGHTS = {"view": 1.0, "cart": 4.0, "purchase": 8.0}


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (user_id, item_id, event_type, ts, session_id) as a contract-typed frame."""
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts", "session_id"])
    df["ts"] = pd.to_datetime(df["ts"]).astype("datetime64[us]")
    df["session_id"] = df["session_id"].astype("object")
    df["price"] = 1.0
    df["quantity"] = 1.0
    return df


def items_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (item_id, category, created_at)."""
    df = pd.DataFrame(rows, columns=["item_id", "category", "created_at"])
    df["created_at"] = pd.to_datetime(df["created_at"]).astype("datetime64[us]")
    df["brand"] = None
    df["price"] = 1.0
    df["available"] = True
    return df


def feature_con(
    events: pd.DataFrame,
    items: pd.DataFrame | None,
    as_of: datetime,
    half_life_days: float = 10.0,
    **cfg,
) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with `events_asof` built from the frames, ready for feature SQL."""
    con = duckdb.connect()
    con.register("lake_events", events)
    if items is None:
        items = items_frame([]).astype({"item_id": events["item_id"].dtype})
    con.register("catalog", items)
    events_asof(
        con, as_of, FeatureConfig(event_weights=WEIGHTS, half_life_days=half_life_days, **cfg)
    )
    return con


def build(con: duckdb.DuckDBPyConnection, table: str, as_of: datetime, **params) -> pd.DataFrame:
    """Run sql/features/<table>.sql and return it sorted by its key columns."""
    p = {
        "as_of": as_of,
        "short_days": 7.0,
        "covis_days": 30.0,
        "top_n": 50,
        "max_session_items": 30,
    }
    p.update(params)
    create_table(con, f"t_{table}", f"features/{table}", p, temp=True)
    df = con.sql(f"select * from t_{table}").df()
    keys = [c for c in ("user_id", "item_id", "category", "other_item_id") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)
