"""The buy-again baseline: each user's own purchases before the cutoff, most bought first,
then most recently bought; views and carts never count, nothing after the cutoff counts."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from model_helpers import FEATURES

from recpipe.contract import EVENT_TYPES
from recpipe.tasks.evaluation.offline_evaluation import buy_again_lists
from recpipe.tasks.features.feature_tables import feature_tables
from recpipe.tasks.features.snapshot_arrays import snapshot_arrays
from recpipe.tasks.ingest.ingested_events import ingested_events


def test_buy_again_orders_by_count_then_recency(tmp_path):
    rows = [  # (user, item, event, day of March 2024)
        ("a", "milk", "purchase", 1), ("a", "milk", "purchase", 5), ("a", "milk", "purchase", 9),
        ("a", "eggs", "purchase", 2), ("a", "eggs", "purchase", 8),
        ("a", "tea", "purchase", 3), ("a", "salt", "purchase", 7),
        ("a", "wine", "view", 9), ("a", "cake", "cart", 9),
        ("a", "soap", "purchase", 25),  # after the cutoff
        ("b", "milk", "view", 4),
    ]  # fmt: skip
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "day"])
    log["ts"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(log.pop("day") - 1, unit="D")
    path = tmp_path / "events.parquet"
    log.to_parquet(path, index=False)
    ingested_events(path, tmp_path / "lake", list(EVENT_TYPES), now=datetime(2025, 1, 1))
    feature_tables(tmp_path / "lake", tmp_path / "wh.duckdb", datetime(2024, 3, 20), "eval",
                   FEATURES)  # fmt: skip
    snap = snapshot_arrays(tmp_path / "wh.duckdb", "eval")
    users = np.array([list(snap.user_ids).index(u) for u in ("a", "b")])
    lists = buy_again_lists(snap, users, 6)
    named = [[snap.item_ids[i] if i >= 0 else None for i in row] for row in lists]
    # milk x3, eggs x2, then the single purchases by recency: salt (day 7), tea (day 3)
    assert named[0] == ["milk", "eggs", "salt", "tea", None, None]
    assert named[1] == [None] * 6
