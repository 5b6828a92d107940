"""Candidate generation: a union of sources, each row tagged with the source's rank and score.

Sources (all computed from one snapshot, so as of its cutoff):
- `history`   the user's own items by decayed strength (repeat candidates);
- `repeat`    the user's items bought at least twice, by purchase count then recency;
- `covis`     neighbours of the user's most recent items in `item_covisitation`;
- `mf`        top items by ALS dot product, excluding the user's history (exact top-N);
- `popular`   most popular items by decayed popularity;
- `trending`  items whose last-7-day audience grows fastest;
- `category`  popular items of the user's top categories, weighted by affinity.
Each source's rank (1 = best, NaN when absent) becomes a ranker feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from recpipe.contract import CANDIDATE_SOURCES
from recpipe.tasks.common.row_order import positions_in_rows, row_value_order
from recpipe.tasks.features.snapshot_arrays import ITEM_FEATURES, USER_ITEM_FEATURES, SnapshotArrays

SOURCES = CANDIDATE_SOURCES
_POP = ITEM_FEATURES.index("decayed_popularity")
_U7 = ITEM_FEATURES.index("n_users_7d")
_TREND = ITEM_FEATURES.index("trend")
_LAST = USER_ITEM_FEATURES.index("days_since_last")
_N_PURCHASES = USER_ITEM_FEATURES.index("n_purchases")
_SINCE_PURCHASE = USER_ITEM_FEATURES.index("days_since_last_purchase")


@config_dataclass(frozen=True)
class CandidateConfig:
    """How many items each source contributes, and the cap on the union per user.

    The one definition of these settings: training parameters nest it, and scoring reads back
    the values a model was trained with from its MLflow run.
    """

    n_history: int = Field(30, ge=0, description="User's own items (repeat candidates).")
    n_repeat: int = Field(
        100,
        ge=0,
        description="User's items bought at least twice, most bought first (on repeat-heavy "
        "shops they go far past the top history items).",
    )
    n_covis: int = Field(40, ge=0, description="Co-visitation neighbours of recent items.")
    n_mf: int = Field(50, ge=0, description="MF top-N (history excluded).")
    n_popular: int = Field(10, ge=0, description="Globally popular items.")
    n_trending: int = Field(10, ge=0, description="Trending items.")
    n_category: int = Field(30, ge=0, description="Popular items in the user's top categories.")
    covis_seeds: int = Field(
        5, ge=1, description="The user's most recent items whose neighbours are taken."
    )
    top_categories: int = Field(
        3, ge=1, description="The user's categories the category source draws from."
    )
    max_candidates: int = Field(
        250,
        ge=10,
        le=2000,
        description="Cap on the union per user (reached by users with long histories).",
    )
    mf_pool: int = Field(
        5_000,
        ge=1,
        description="MF top-N searches the most popular this many items "
        "(on medium, 5,000 and 10,000 give the same candidates; cost is linear).",
    )


@dataclass
class CandidateSet:
    """(user row, item) pairs for a batch of users; `row` indexes into `users`."""

    users: np.ndarray  # snapshot user positions of this batch
    row: np.ndarray  # int32, position in `users`
    item: np.ndarray  # int32, snapshot item position
    ranks: dict[str, np.ndarray] = field(default_factory=dict)  # per source, float32, NaN absent
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # per source, float32, NaN absent

    def __len__(self) -> int:
        return len(self.item)

    def per_user(self) -> np.ndarray:
        return np.bincount(self.row, minlength=len(self.users))


@dataclass
class SourceRows:
    row: np.ndarray
    item: np.ndarray
    rank: np.ndarray
    score: np.ndarray


def csr_row_topn(m: sp.csr_matrix, n: int) -> SourceRows:
    """Top-n entries of every row of a CSR matrix by value (ties by column), with 1-based ranks."""
    m = m.tocsr(copy=True)
    m.eliminate_zeros()
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))
    order = row_value_order(rows, m.data, m.indices)
    rows, cols, vals = rows[order], m.indices[order], m.data[order]
    starts = np.repeat(m.indptr[:-1], np.diff(m.indptr))
    rank = np.arange(len(rows)) - starts + 1
    keep = rank <= n
    return SourceRows(
        rows[keep],
        cols[keep].astype(np.int32),
        rank[keep].astype(np.float32),
        vals[keep].astype(np.float32),
    )


def _broadcast(n_rows: int, items: np.ndarray, scores: np.ndarray) -> SourceRows:
    k = len(items)
    return SourceRows(
        np.repeat(np.arange(n_rows, dtype=np.int32), k),
        np.tile(items.astype(np.int32), n_rows),
        np.tile(np.arange(1, k + 1, dtype=np.float32), n_rows),
        np.tile(scores.astype(np.float32), n_rows),
    )


def global_top(
    snap: SnapshotArrays, n: int, kind: str, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-n allowed items: `popular` (decayed), `alltime` (distinct users), `recent` (7 days), `trending`."""
    if kind == "popular":
        score = snap.item_feats[:, _POP].copy()
    elif kind == "alltime":
        score = snap.item_feats[:, ITEM_FEATURES.index("n_users_all")].copy()
    elif kind == "recent":
        score = snap.item_feats[:, _U7].copy()
    else:
        score = snap.item_feats[:, _TREND] * np.log1p(snap.item_feats[:, _U7])
    score = np.nan_to_num(score, nan=0.0)
    score[~allowed] = -np.inf
    top = np.argsort(-score, kind="stable")[:n]
    top = top[np.isfinite(score[top]) & (score[top] > 0)]
    return top.astype(np.int32), score[top].astype(np.float32)


def category_top_items(snap: SnapshotArrays, n: int, allowed: np.ndarray) -> sp.csr_matrix:
    """Categories x items matrix holding each category's top-n allowed items, score = share of its popularity."""
    pop = np.nan_to_num(snap.item_feats[:, _POP], nan=0.0) * allowed
    cats = snap.item_category
    m = sp.csr_matrix(
        (pop, (cats, np.arange(snap.n_items))), shape=(len(snap.categories), snap.n_items)
    )
    top = csr_row_topn(m, n)
    totals = np.asarray(m.sum(axis=1)).ravel()
    vals = top.score / np.maximum(totals[top.row], 1e-9)
    return sp.csr_matrix((vals, (top.row, top.item)), shape=m.shape)


def mf_item_pool(snap: SnapshotArrays, allowed: np.ndarray, size: int) -> np.ndarray:
    """The `size` most popular allowed items (all allowed items when fewer): the MF search space.

    Exact top-N over every item costs users x items x factors; items outside the most popular
    `size` rarely make a top-N and are still reachable through the other sources.
    """
    idx = np.flatnonzero(allowed)
    if len(idx) <= size:
        return idx
    pop = np.nan_to_num(snap.item_feats[idx, _POP], nan=0.0)
    return np.sort(idx[np.argsort(-pop, kind="stable")[:size]])


def mf_topn(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    n: int,
    exclude: sp.csr_matrix | None,
    allowed: np.ndarray,
    block_bytes: int = 64 << 20,
) -> SourceRows:
    """Exact top-n items by dot product per user, excluding `exclude` entries and items not
    `allowed`; ties by item position. Users with an all-zero vector get none.

    Scores come from one float32 matrix product per block of users (at most `block_bytes`);
    the selection avoids sorting whole rows: items are cut into at least 2n column blocks, and
    the n-th largest block maximum of a user is a lower bound on its n-th best score (n blocks
    each hold an item scoring at least that much), so only items above it (about 3n per user)
    are sorted.
    """
    empty = SourceRows(
        *(np.zeros(0, dtype=t) for t in (np.int32, np.int32, np.float32, np.float32))
    )
    n_users, n_items = len(user_vecs), len(item_vecs)
    if n <= 0 or n_users == 0 or n_items == 0:
        return empty
    item_t = np.ascontiguousarray(np.asarray(item_vecs, dtype=np.float32).T)
    blocked = ~np.asarray(allowed, dtype=bool)
    has_vec = np.any(user_vecs != 0, axis=1)
    step = max(1, block_bytes // (4 * n_items))
    parts = []
    for start in range(0, n_users, step):
        stop = min(start + step, n_users)
        S = np.asarray(user_vecs[start:stop], dtype=np.float32) @ item_t
        if blocked.any():
            S[:, blocked] = -np.inf
        if exclude is not None and exclude.nnz:
            sub = exclude[start:stop]
            S[np.repeat(np.arange(stop - start), np.diff(sub.indptr)), sub.indices] = -np.inf
        S[~has_vec[start:stop]] = -np.inf
        row, item, score = _row_top(S, n)
        parts.append((row + start, item, score))
    row, item, score = (np.concatenate(p) for p in zip(*parts, strict=True))
    rank = positions_in_rows(row) + 1
    return SourceRows(row.astype(np.int32), item.astype(np.int32), rank.astype(np.float32), score)


def _row_top(S: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) of the n largest finite values of each row of S, ordered by row,
    value descending, column."""
    n_rows, m = S.shape
    width = max(1, m // (2 * n))
    n_blocks = m // width
    if n_blocks > n:
        block_max = S[:, : n_blocks * width].reshape(n_rows, n_blocks, width).max(axis=2)
        if n_blocks * width < m:
            block_max[:, -1] = np.maximum(block_max[:, -1], S[:, n_blocks * width :].max(axis=1))
        bound = np.partition(block_max, n_blocks - n, axis=1)[:, n_blocks - n]
        flat = np.flatnonzero((S >= bound[:, None]).ravel())
    else:
        flat = np.arange(S.size)
    row, col = np.divmod(flat, m)
    val = S.ravel()[flat]
    ok = np.isfinite(val)
    row, col, val = row[ok], col[ok], val[ok]
    order = row_value_order(row, val, col)
    row, col, val = row[order], col[order], val[order]
    keep = positions_in_rows(row) < n
    return row[keep], col[keep], val[keep]


@dataclass
class ItemLists:
    """The user-independent parts of the sources for one snapshot and `allowed` mask: computed
    once per shard or evaluation run instead of once per batch of users."""

    mf_pool: np.ndarray  # item positions MF searches
    popular: tuple[np.ndarray, np.ndarray]
    trending: tuple[np.ndarray, np.ndarray]
    category_items: sp.csr_matrix  # categories x items, see category_top_items


def item_lists(
    snap: SnapshotArrays, cfg: CandidateConfig, allowed: np.ndarray | None = None
) -> ItemLists:
    allowed = np.ones(snap.n_items, dtype=bool) if allowed is None else allowed
    return ItemLists(
        mf_pool=mf_item_pool(snap, allowed, cfg.mf_pool),
        popular=global_top(snap, cfg.n_popular, "popular", allowed),
        trending=global_top(snap, cfg.n_trending, "trending", allowed),
        category_items=category_top_items(snap, cfg.n_category, allowed),
    )


def candidate_set(
    snap: SnapshotArrays,
    users: np.ndarray,
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    cfg: CandidateConfig,
    allowed: np.ndarray | None = None,
    sources: tuple[str, ...] = SOURCES,
    lists: ItemLists | None = None,
) -> CandidateSet:
    """Union of the candidate sources for snapshot users `users` (positions), capped per user.

    `user_vecs` / `item_vecs` are MF factors aligned to `users` / snapshot items; `allowed`
    masks items that may be recommended (default all); `lists` are `item_lists(snap, cfg,
    allowed)` when the caller keeps them across batches.
    """
    users = np.asarray(users, dtype=np.int64)
    allowed = np.ones(snap.n_items, dtype=bool) if allowed is None else allowed
    lists = item_lists(snap, cfg, allowed) if lists is None else lists
    hist = snap.interactions[users]
    parts: dict[str, SourceRows] = {}
    if "history" in sources:
        parts["history"] = csr_row_topn(_allowed_columns(hist, allowed), cfg.n_history)
    if "repeat" in sources:
        parts["repeat"] = bought_items(snap, users, cfg.n_repeat, min_purchases=2, allowed=allowed)
    if "covis" in sources:
        # seeds: the user's covis_seeds most recent items, weighted by recency
        recency = hist.copy()
        recency.data = 1.0 / (1.0 + snap.ui_feats[_row_positions(snap, users), _LAST])
        seeds = csr_row_topn(recency, cfg.covis_seeds)
        seed_m = sp.csr_matrix((seeds.score, (seeds.row, seeds.item)), shape=hist.shape)
        parts["covis"] = csr_row_topn(_allowed_columns(seed_m @ snap.covis, allowed), cfg.n_covis)
    if "mf" in sources:
        pool = lists.mf_pool
        mf = mf_topn(
            user_vecs, item_vecs[pool], cfg.n_mf, hist[:, pool].tocsr(), np.ones(len(pool), bool)
        )
        mf.item = pool[mf.item].astype(np.int32)
        parts["mf"] = mf
    if "popular" in sources:
        parts["popular"] = _broadcast(len(users), *lists.popular)
    if "trending" in sources:
        parts["trending"] = _broadcast(len(users), *lists.trending)
    if "category" in sources:
        top_cats = csr_row_topn(snap.affinity[users], cfg.top_categories)
        user_cats = sp.csr_matrix(
            (top_cats.score, (top_cats.row, top_cats.item)),
            shape=(len(users), len(snap.categories)),
        )
        parts["category"] = csr_row_topn((user_cats @ lists.category_items).tocsr(), cfg.n_category)
    return union(users, parts, snap.n_items, cfg.max_candidates)


def _allowed_columns(m: sp.csr_matrix, allowed: np.ndarray) -> sp.csr_matrix:
    """A copy of `m` with entries in columns not `allowed` set to 0 (dropped by csr_row_topn);
    cheaper than `m.multiply(allowed[None, :])`, which builds a new sparse product."""
    out = m.tocsr(copy=True)
    out.data = out.data * allowed[out.indices]
    return out


def bought_items(
    snap: SnapshotArrays,
    users: np.ndarray,
    n: int,
    min_purchases: int = 1,
    allowed: np.ndarray | None = None,
) -> SourceRows:
    """The top-n items each of `users` bought at least `min_purchases` times before the cutoff
    (and `allowed`): most bought first, then most recently bought, then by item; the score is
    the purchase count. The buy-again order, as the `repeat` source and the baseline use it."""
    entry = _row_positions(snap, users)
    row = np.repeat(np.arange(len(users), dtype=np.int32), np.diff(snap.interactions.indptr)[users])
    item = snap.interactions.indices[entry]
    bought = np.nan_to_num(snap.ui_feats[entry, _N_PURCHASES], nan=0.0)
    keep = bought >= min_purchases
    if allowed is not None:
        keep &= allowed[item]
    row, item, entry, bought = row[keep], item[keep], entry[keep], bought[keep]
    since = np.nan_to_num(snap.ui_feats[entry, _SINCE_PURCHASE], nan=np.inf)
    order = np.lexsort((item, since, -bought, row))
    row, item, bought = row[order], item[order], bought[order]
    rank = positions_in_rows(row) + 1
    top = rank <= n
    return SourceRows(
        row[top],
        item[top].astype(np.int32),
        rank[top].astype(np.float32),
        bought[top].astype(np.float32),
    )


def _row_positions(snap: SnapshotArrays, users: np.ndarray) -> np.ndarray:
    """Positions in the snapshot's CSR data of the rows `users`, in row order."""
    starts, ends = snap.interactions.indptr[users], snap.interactions.indptr[users + 1]
    lengths = ends - starts
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(lengths.sum()) + offsets


def union(users: np.ndarray, parts: dict[str, SourceRows], n_items: int, cap: int) -> CandidateSet:
    """Deduplicate (row, item) across sources; keep per-source rank/score; cap by best rank."""
    if not parts:
        raise ValueError("no candidate sources")
    names = [n for n in SOURCES if n in parts]
    keys = np.concatenate([parts[n].row.astype(np.int64) * n_items + parts[n].item for n in names])
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    uniq = sorted_keys[first]
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    ranks, scores = {}, {}
    best = np.full(len(uniq), np.inf, dtype=np.float32)
    offset = 0
    for name in SOURCES:
        r = np.full(len(uniq), np.nan, dtype=np.float32)
        s = np.full(len(uniq), np.nan, dtype=np.float32)
        if name in parts:
            p = parts[name]
            pos = inverse[offset : offset + len(p.item)]
            offset += len(p.item)
            r[pos], s[pos] = p.rank, p.score
            best = np.fmin(best, r)
        ranks[name], scores[name] = r, s
    row = (uniq // n_items).astype(np.int32)
    item = (uniq % n_items).astype(np.int32)
    order = row_value_order(row, best, item, descending=False)
    keep = order[positions_in_rows(row[order]) < cap]
    keep.sort()
    return CandidateSet(
        users=users,
        row=row[keep],
        item=item[keep],
        ranks={k: v[keep] for k, v in ranks.items()},
        scores={k: v[keep] for k, v in scores.items()},
    )
