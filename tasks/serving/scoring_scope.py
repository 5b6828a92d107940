"""What a scoring run must produce: how many users, which items are blocked, the list length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd


@dataclass
class ScoringScope:
    n_users: int
    blocked_items: list
    k: int  # rows per user: top_k, or fewer when the catalogue has fewer showable items


def scoring_scope(warehouse: Path, top_k: int, exclude_items: tuple) -> ScoringScope:
    """Users of the serve snapshot, items that may not be shown, and the achievable K."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        n_users = con.sql("select count(*) from serve.user_universe").fetchall()[0][0]
        items = con.sql("select item_id, available from serve.item_features").df()
    # the ids as the item column's type (pandas' string dtype for string ids, which numpy lacks)
    excluded = pd.Series(list(exclude_items), dtype=object).astype(items["item_id"].dtype)
    blocked_mask = ~items["available"].to_numpy(bool) | items["item_id"].isin(excluded).to_numpy()
    blocked = items.loc[blocked_mask, "item_id"].tolist()
    return ScoringScope(
        int(n_users), blocked, int(min(top_k, len(items) - int(blocked_mask.sum())))
    )
