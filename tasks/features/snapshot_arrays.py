"""A feature snapshot loaded as arrays aligned to one user and one item index.

Candidate generation, ranker features and scoring gather from these arrays by position
instead of joining tables row by row. Everything comes from the snapshot's tables in
`warehouse.duckdb`, so it is as of the snapshot's cutoff.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recpipe.tasks.common.sql_files import sql_text
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.features.feature_tables import SNAPSHOTS
from recpipe.tasks.features.interaction_matrix import InteractionMatrix

USER_FEATURES = (
    "n_events",
    "n_view_7d",
    "n_view_30d",
    "n_cart_30d",
    "n_purchase_30d",
    "n_purchase_all",
    "days_since_last_event",
    "days_since_first_event",
    "active_days",
    "n_sessions",
    "n_items",
    "n_categories",
    "purchase_rate",
    "decayed_strength",
)
ITEM_FEATURES = (
    "n_users_all",
    "n_users_30d",
    "n_users_7d",
    "n_users_1d",
    "n_purchase_all",
    "n_purchase_7d",
    "decayed_popularity",
    "cart_rate",
    "cart_to_purchase_rate",
    "purchase_rate",
    "trend",
    "age_days",
    "days_since_last_event",
    "repeat_buyer_share",
    "category_repeat_rate",
    "price",
)
USER_ITEM_FEATURES = (
    "strength",
    "decayed_views",
    "decayed_carts",
    "decayed_purchases",
    "n_views",
    "n_carts",
    "n_purchases",
    "repeat_purchases",
    "days_since_last",
    "days_since_first",
    "days_since_last_purchase",
    "n_sessions",
    "purchase_gap_days",
    "purchase_due",
    "basket_share",
)
AFFINITY_FEATURES = ("decayed_share", "long_share", "short_share", "drift")


def _floats(names) -> str:
    """Select list casting feature columns to FLOAT in DuckDB (half the bytes to transfer)."""
    return ", ".join(f"{n}::FLOAT as {n}" for n in names)


USER_TABLE_COLUMNS = {
    "user_universe": "user_id",
    "user_features": f"user_id, {_floats(USER_FEATURES)}",
    "user_item_features": f"user_id, item_id, {_floats(USER_ITEM_FEATURES)}",
    "user_category_affinity": f"user_id, category, {_floats(AFFINITY_FEATURES)}",
}
"""What a snapshot's arrays read from each per-user table (all but the items are per user)."""
USER_BUCKET = "hash(user_id) % $n_shards::UBIGINT"
"""The scoring shard (hash bucket of `$n_shards`) a user belongs to; typed parameters: untyped
ones make DuckDB widen the hash to HUGEINT, 10x slower."""


@dataclass
class SnapshotArrays:
    """Feature tables of one snapshot as position-aligned arrays (users x items)."""

    snapshot: str
    as_of: datetime
    user_ids: np.ndarray
    item_ids: np.ndarray
    categories: np.ndarray  # category names; item_category indexes into it
    item_category: np.ndarray  # int32 per item
    item_available: np.ndarray  # bool per item
    user_feats: np.ndarray  # float32 (n_users, len(USER_FEATURES)), NaN when unknown
    item_feats: np.ndarray  # float32 (n_items, len(ITEM_FEATURES))
    interactions: sp.csr_matrix  # strength, users x items, sorted indices
    ui_feats: np.ndarray  # float32 (nnz, len(USER_ITEM_FEATURES)) in CSR order
    affinity: sp.csr_matrix  # decayed_share, users x categories
    affinity_feats: np.ndarray  # float32 (nnz, len(AFFINITY_FEATURES)) in CSR order, NULL/NaN -> 0
    covis: sp.csr_matrix  # items x items co-visitation score
    _ui_keys: np.ndarray = field(default=None, repr=False)
    _aff_keys: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._ui_keys = csr_keys(self.interactions)
        self._aff_keys = csr_keys(self.affinity)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def matrix(self) -> InteractionMatrix:
        """The strength matrix with its id maps."""
        return InteractionMatrix(self.interactions, self.user_ids, self.item_ids, self.as_of)

    def user_index(self, ids) -> np.ndarray:
        return pd.Index(self.user_ids).get_indexer(pd.Index(np.asarray(ids)))

    def item_index(self, ids) -> np.ndarray:
        return pd.Index(self.item_ids).get_indexer(pd.Index(np.asarray(ids)))

    def user_item_lookup(
        self, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(position in ui_feats or -1, found mask) for each (user, item) pair."""
        return _lookup(self._ui_keys, users.astype(np.int64) * self.n_items + items)

    def affinity_lookup(self, users: np.ndarray, cats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _lookup(self._aff_keys, users.astype(np.int64) * len(self.categories) + cats)


def csr_keys(m: sp.csr_matrix) -> np.ndarray:
    """row * n_cols + col of every stored entry; sorted when the CSR's indices are."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices.astype(np.int64)


def _lookup(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `query` in the sorted `keys`. The search runs over the slice of keys within
    the queries' range (a batch of users owns a short, cache-resident stretch of the keys)."""
    if len(query) and len(keys):
        lo, hi = np.searchsorted(keys, [query.min(), query.max()], side="left")
        hi = min(int(hi) + 1, len(keys))
        pos = np.searchsorted(keys[lo:hi], query) + lo
    else:
        pos = np.zeros(len(query), dtype=np.int64)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = (keys[pos] == query) if len(keys) else np.zeros(len(query), dtype=bool)
    return np.where(found, pos, -1), found


def _fetch_table(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pa.Table:
    """Query result as an Arrow table (cheaper to turn into numpy columns than `fetchnumpy`)."""
    return con.sql(sql, params=params or None).to_arrow_table()


def _float_matrix(table: pa.Table, names, fill: float = np.nan) -> np.ndarray:
    """float32 (rows, len(names)) from Arrow columns; NULL -> `fill`."""
    out = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        col = table.column(name)
        if col.null_count and not np.isnan(fill):
            col = pc.fill_null(col, fill)
        out[:, j] = col.to_numpy()  # NULL -> NaN
    return out


def _ids(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def _ordered_csr(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape, extra: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """CSR from coordinates plus the `extra` per-entry matrix permuted into CSR order."""
    keep = (rows >= 0) & (cols >= 0)
    rows, cols, values, extra = rows[keep], cols[keep], values[keep], extra[keep]
    order = np.argsort(rows.astype(np.int64) * max(int(shape[1]), 1) + cols, kind="stable")
    rows, cols, values, extra = rows[order], cols[order], values[order], extra[order]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    m = sp.csr_matrix((values.astype(np.float32), cols.astype(np.int32), indptr), shape=shape)
    return m, extra.astype(np.float32)


def snapshot_arrays(
    warehouse: Path,
    snapshot: str,
    extra_user_ids: np.ndarray | None = None,
    shard: tuple[int, int] | None = None,
    only_user_ids: np.ndarray | None = None,
    shard_inputs: str | None = None,
) -> SnapshotArrays:
    """Load snapshot `snapshot` of `warehouse` (see `_snapshot_arrays`)."""
    with stage("snapshot_arrays", part=snapshot) as st:
        snap = _snapshot_arrays(
            warehouse, snapshot, extra_user_ids, shard, only_user_ids, shard_inputs
        )
        st.rows_out = int(snap.n_users)
    return snap


def _snapshot_arrays(
    warehouse: Path,
    snapshot: str,
    extra_user_ids: np.ndarray | None = None,
    shard: tuple[int, int] | None = None,
    only_user_ids: np.ndarray | None = None,
    shard_inputs: str | None = None,
) -> SnapshotArrays:
    """Load snapshot `snapshot` of `warehouse`.

    Users are those of `user_universe` (events before the cutoff, or listed in the users file)
    plus `extra_user_ids`. With `shard=(i, n)` only users whose hash falls in bucket i of n
    are loaded, so memory grows with the shard, not with all users; with `only_user_ids`
    only those of the snapshot's users are (a sample for training or evaluation). Items are
    always whole. `shard_inputs` is the directory `shard_inputs(warehouse, n)` wrote for this
    snapshot: the shard's users are read from their own files there, the same rows the hash
    filter would find in the warehouse's tables.
    """
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}")
    s = snapshot
    if shard_inputs is not None and shard is None:
        raise ValueError("shard_inputs are read per shard: pass shard=(i, n) with them")
    conditions, params = [], {}
    if shard is not None and shard_inputs is None:
        conditions.append(f"{USER_BUCKET} = $shard::UBIGINT")
        params = {"shard": int(shard[0]), "n_shards": int(shard[1])}
    if only_user_ids is not None:
        conditions.append("user_id in (select user_id from only_users)")
    where = f"where {' and '.join(conditions)}" if conditions else ""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if only_user_ids is not None:
            con.register("only_users", pa.table({"user_id": np.asarray(only_user_ids)}))
        fetched = {}
        for table, columns in USER_TABLE_COLUMNS.items():
            if shard_inputs is None:
                sql, args = f"select {columns} from {s}.{table} {where}", params
            elif files := sorted(glob.glob(f"{shard_inputs}/{table}/shard={shard[0]}/*.parquet")):
                sql = f"select {columns} from read_parquet($files, hive_partitioning = false)"
                args = {"files": files}
            else:  # no user of the snapshot falls in this bucket: no file was written
                sql, args = f"select {columns} from {s}.{table} limit 0", None
            fetched[table] = _fetch_table(con, sql, args)
    universe, uf = fetched["user_universe"], fetched["user_features"]
    ui, aff = fetched["user_item_features"], fetched["user_category_affinity"]

    items = _item_arrays(str(Path(warehouse).resolve()), s, Path(warehouse).stat().st_mtime_ns)
    item_ids, cats = items.item_ids, pd.Index(items.categories)
    user_ids = np.asarray(pd.Index(_ids(universe, "user_id")).union(pd.Index(_ids(uf, "user_id"))))
    if extra_user_ids is not None and len(extra_user_ids):
        extra = pd.Index(np.asarray(extra_user_ids)).difference(pd.Index(user_ids))
        user_ids = np.asarray(pd.Index(user_ids).append(extra).sort_values())
    uidx = pd.Index(user_ids)
    user_feats = np.full((len(user_ids), len(USER_FEATURES)), np.nan, dtype=np.float32)
    user_feats[uidx.get_indexer(_ids(uf, "user_id"))] = _float_matrix(uf, USER_FEATURES)
    ui_rows = uidx.get_indexer(_ids(ui, "user_id"))
    ui_cols = items.index.get_indexer(_ids(ui, "item_id"))
    interactions, ui_feats = _ordered_csr(
        ui_rows,
        ui_cols,
        _float_matrix(ui, ["strength"])[:, 0],
        (len(user_ids), len(item_ids)),
        _float_matrix(ui, USER_ITEM_FEATURES),
    )
    aff_rows = uidx.get_indexer(_ids(aff, "user_id"))
    aff_cols = cats.get_indexer(pd.Index(_ids(aff, "category")).astype(str))
    affinity, aff_feats = _ordered_csr(
        aff_rows,
        aff_cols,
        _float_matrix(aff, ["decayed_share"], fill=0.0)[:, 0],
        (len(user_ids), len(cats)),
        _float_matrix(aff, AFFINITY_FEATURES),
    )
    np.nan_to_num(aff_feats, copy=False, nan=0.0)  # no share is a share of 0
    return SnapshotArrays(
        snapshot=s,
        as_of=items.as_of,
        user_ids=user_ids,
        item_ids=item_ids,
        categories=items.categories,
        item_category=items.item_category,
        item_available=items.item_available,
        user_feats=user_feats,
        item_feats=items.item_feats,
        interactions=interactions,
        ui_feats=ui_feats,
        affinity=affinity,
        affinity_feats=aff_feats,
        covis=items.covis,
    )


@dataclass(frozen=True)
class _ItemArrays:
    as_of: datetime
    item_ids: np.ndarray
    index: pd.Index
    categories: np.ndarray
    item_category: np.ndarray
    item_available: np.ndarray
    item_feats: np.ndarray
    covis: sp.csr_matrix


@lru_cache(maxsize=4)
def _item_arrays(warehouse: str, snapshot: str, mtime_ns: int) -> _ItemArrays:
    """Item-level arrays of a snapshot, cached per process (shards of one run share them).

    Keyed on the warehouse file's modification time, so a rebuilt snapshot is read again.
    Treat the arrays as read-only.
    """
    s = snapshot
    with duckdb.connect(warehouse, read_only=True) as con:
        itf = _fetch_table(
            con,
            f"select item_id, category, available, {_floats(ITEM_FEATURES)} "
            f"from {s}.item_features order by item_id",
        )
        cv = _fetch_table(
            con, f"select item_id, other_item_id, score::FLOAT as score from {s}.item_covisitation"
        )
        as_of = con.sql(f"select max(as_of) from {s}.item_features").fetchall()[0][0]
    item_ids = _ids(itf, "item_id")
    iidx = pd.Index(item_ids)
    item_cats = pd.Index(_ids(itf, "category")).astype(str)
    cats = pd.Index(pd.unique(item_cats)).sort_values()
    cv_rows, cv_cols = (
        iidx.get_indexer(_ids(cv, "item_id")),
        iidx.get_indexer(_ids(cv, "other_item_id")),
    )
    keep = (cv_rows >= 0) & (cv_cols >= 0)
    covis = sp.csr_matrix(
        (_float_matrix(cv, ["score"])[keep, 0], (cv_rows[keep], cv_cols[keep])),
        shape=(len(item_ids), len(item_ids)),
    )
    return _ItemArrays(
        as_of=as_of,
        item_ids=item_ids,
        index=iidx,
        categories=np.asarray(cats, dtype=object),
        item_category=cats.get_indexer(item_cats).astype(np.int32),
        item_available=_ids(itf, "available").astype(bool),
        item_feats=_float_matrix(itf, ITEM_FEATURES),
        covis=covis,
    )


def snapshot_user_ids(warehouse: Path, snapshot: str) -> np.ndarray:
    """The sorted ids of the users `snapshot_arrays(warehouse, snapshot)` loads (no extra users)."""
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ids = _fetch_table(
            con,
            f"select user_id from {snapshot}.user_universe "
            f"union select user_id from {snapshot}.user_features",
        )
    return np.asarray(pd.Index(_ids(ids, "user_id")).sort_values())


def snapshot_item_ids(warehouse: Path, snapshot: str) -> np.ndarray:
    """The item ids of the snapshot, in the order of `snapshot_arrays(...).item_ids`."""
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}")
    return _item_arrays(
        str(Path(warehouse).resolve()), snapshot, Path(warehouse).stat().st_mtime_ns
    ).item_ids


def snapshot_matrix(warehouse: Path, snapshot: str) -> InteractionMatrix:
    """Only the strength matrix of a snapshot with its id maps (what ALS needs), read cheaply.

    Rows and columns match `snapshot_arrays(warehouse, snapshot)` without extra users.
    """
    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}")
    s = snapshot
    user_ids = snapshot_user_ids(warehouse, s)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        item_ids = _ids(
            _fetch_table(con, f"select item_id from {s}.item_features order by item_id"), "item_id"
        )
        as_of = con.sql(f"select max(as_of) from {s}.item_features").fetchall()[0][0]
        # rows and columns are numbered here, from the same id arrays the matrix carries
        rows_of = np.arange(len(user_ids), dtype=np.int32)
        con.register("user_rows", pa.table({"user_id": user_ids, "row_no": rows_of}))
        cols_of = np.arange(len(item_ids), dtype=np.int32)
        con.register("item_cols", pa.table({"item_id": item_ids, "col_no": cols_of}))
        con.execute(f"use {s}")
        entries = _fetch_table(con, sql_text("features/interaction_entries"))
    rows = entries.column("row_no").to_numpy()
    indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(user_ids)), out=indptr[1:])
    m = sp.csr_matrix(
        (
            entries.column("strength").to_numpy(),
            entries.column("col_no").to_numpy(),
            indptr,
        ),
        shape=(len(user_ids), len(item_ids)),
    )
    return InteractionMatrix(m, np.asarray(user_ids), np.asarray(item_ids), as_of)
