"""Graded labels from a label window of the lake, and the truth matrix evaluation scores against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipe.contract import DEFAULT_LABEL_GRADES
from recpipe.tasks.common.sql_files import create_table, query
from recpipe.tasks.features.feature_tables import SNAPSHOTS, attach_lake

DEFAULT_GRADES = DEFAULT_LABEL_GRADES  # relevance grade per event type (contract)


@dataclass
class LabelSet:
    """Users with labels and their graded truth over snapshot items (+ items unknown at the cutoff).

    Columns >= n_known_items stand for items first seen in the label window: they count as
    relevant (so recall is honest) but can never be recommended.
    """

    user_ids: np.ndarray
    truth: sp.csr_matrix
    n_known_items: int
    window: tuple[datetime, datetime]


def interaction_labels(
    lake_dir: Path,
    warehouse: Path,
    snapshot: str,
    start: datetime,
    end: datetime,
    grades: dict[str, int],
) -> int:
    """Materialise `{snapshot}.labels` from lake events in [start, end); returns row count."""
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}")
    with duckdb.connect(str(warehouse)) as con:
        attach_lake(con, lake_dir)
        con.execute(f"create schema if not exists {snapshot}")
        return create_table(
            con,
            f"{snapshot}.labels",
            "labels/interaction_labels",
            {
                "start": start,
                "end": end,
                "event_types": list(grades),
                "event_grades": [int(g) for g in grades.values()],
            },
        )


def window_users(lake_dir: Path, start: datetime, end: datetime) -> int:
    """Distinct users with an event in [start, end) in the lake."""
    with duckdb.connect() as con:
        attach_lake(con, lake_dir)
        return int(query(con, "labels/window_users", {"start": start, "end": end}).fetchone()[0])


def label_set(warehouse: Path, snapshot: str, item_ids: np.ndarray) -> LabelSet:
    """Read `{snapshot}.labels` as a truth matrix aligned to `item_ids`."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        df = con.sql(
            f"select user_id, item_id, grade, window_start, window_end from {snapshot}.labels"
        ).df()
    users = pd.Index(pd.unique(df["user_id"])).sort_values()
    known = pd.Index(np.asarray(item_ids))
    cols = known.get_indexer(df["item_id"])
    unknown = cols < 0
    if unknown.any():
        extra = pd.Index(pd.unique(df.loc[unknown, "item_id"]))
        cols[unknown] = len(known) + extra.get_indexer(df.loc[unknown, "item_id"])
        n_cols = len(known) + len(extra)
    else:
        n_cols = len(known)
    truth = sp.csr_matrix(
        (df["grade"].to_numpy(np.float32), (users.get_indexer(df["user_id"]), cols)),
        shape=(len(users), n_cols),
    )
    window = (df["window_start"].iloc[0], df["window_end"].iloc[0]) if len(df) else (None, None)
    return LabelSet(
        user_ids=np.asarray(users), truth=truth, n_known_items=len(known), window=window
    )


def sampled_label_rows(
    known_user_ids: np.ndarray, labels: LabelSet, max_users: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Sorted rows of `labels` whose user is among `known_user_ids` (a snapshot's users), at
    most `max_users` of them drawn with `rng` (all when None)."""
    pos = pd.Index(np.asarray(known_user_ids)).get_indexer(pd.Index(labels.user_ids))
    rows = np.flatnonzero(pos >= 0)
    if max_users is not None and len(rows) > max_users:
        rows = np.sort(rng.choice(rows, max_users, replace=False))
    return rows
