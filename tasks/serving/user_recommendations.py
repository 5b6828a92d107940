"""Per-user top-K recommendation rows for one shard of users, with the business rules.

For each user of the shard (hash bucket of user ids in the `serve` snapshot):
- warm users: candidates scored by the ranker; the re-purchase rule, a drift adjustment
  (recent category interest weighted up when it departs from the long-term mix) and an
  optional per-category cap are applied before taking the top of the list; a baseline
  fallback version (no ranker could be trained) gives them its baseline's list instead, under
  the same re-purchase, availability and category rules (source `baseline`);
- cold users (fewer than `cold_max_events` events, or none): trending items in the
  categories of their first events if any, else popular items spread over categories;
- exploration slots at fixed positions hold Thompson-sampled items (new items favoured);
- unavailable and excluded items never appear, no item appears twice, and lists are padded
  with popular items spread over categories to exactly K where the catalogue allows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from recpipe.contract import RECOMMENDATION_SOURCES
from recpipe.errors import PublishError
from recpipe.tasks.candidates.candidate_sets import (
    CandidateConfig,
    ItemLists,
    csr_row_topn,
    item_lists,
)
from recpipe.tasks.candidates.ranker_features import FEATURE_NAMES
from recpipe.tasks.common.row_order import positions_in_rows
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.evaluation.offline_evaluation import baseline_lists
from recpipe.tasks.features.snapshot_arrays import (
    ITEM_FEATURES,
    USER_FEATURES,
    USER_ITEM_FEATURES,
    SnapshotArrays,
    snapshot_arrays,
    snapshot_user_ids,
)
from recpipe.tasks.models.als_embeddings import ALSEmbeddings
from recpipe.tasks.models.candidate_scoring import (
    embedding_view,
    fill_rows,
    scored_candidates,
    top_k,
)
from recpipe.tasks.models.compiled_ranker import ranker_scorer
from recpipe.tasks.serving.exploration import (
    ExploreConfig,
    explore_pool,
    explore_positions,
    n_explore_slots,
    thompson_draws,
    user_hashes,
)

logger = logging.getLogger(__name__)
SOURCE_NAMES = RECOMMENDATION_SOURCES
_F = {n: i for i, n in enumerate(FEATURE_NAMES)}


Repurchase = Literal["auto", "exclude", "ranker"]


@config_dataclass(frozen=True)
class RecommendConfig:
    """Business rules and list shape of one scoring run (the one place of their defaults)."""

    top_k: int = Field(20, ge=1, le=500, description="Items per user.")
    cold_max_events: int = Field(
        3, ge=0, description="Users with fewer events get the cold-start list."
    )
    repurchase: Repurchase = Field(  # an enum: a dropdown in the UI
        "auto",
        description="Already-bought items: auto = hide them only in categories nobody re-buys; "
        "exclude = hide all bought within the window; ranker = leave to the model.",
    )
    repurchase_window_days: float = Field(
        365.0, gt=0, description="Purchases older than this do not count for the rule."
    )
    durable_repeat_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="auto: categories re-bought by fewer buyers than this are durable.",
    )
    category_cap: int | None = Field(
        None, ge=1, description="At most this many items per category in a list."
    )
    exclude_items: tuple = Field((), description="Items never to show.")
    drift_threshold: float = Field(
        0.3, ge=0, description="Category-mix distance above which a user drifts."
    )
    drift_boost: float = Field(
        1.0, ge=0, description="How strongly a drifting user's recent categories are weighted up."
    )
    batch_users: int = Field(
        2000, ge=1, description="Users scored together; smaller batches reuse memory better."
    )
    threads: int = Field(2, ge=1, description="Per shard: LightGBM and the MF top-N search.")
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    explore: ExploreConfig = Field(default_factory=ExploreConfig)


@dataclass
class ShardResult:
    path: str
    shard: int
    n_users: int
    n_rows: int
    seconds: float
    by_source: dict[str, int]


def allowed_items(snap: SnapshotArrays, exclude_items: tuple) -> np.ndarray:
    """Items that may be shown: available and not on the exclusion list."""
    allowed = snap.item_available.copy()
    if exclude_items:
        pos = snap.item_index(np.asarray(list(exclude_items), dtype=snap.item_ids.dtype))
        allowed[pos[pos >= 0]] = False
    return allowed


def spread_popular(snap: SnapshotArrays, allowed: np.ndarray, n: int) -> np.ndarray:
    """Popular allowed items taken round-robin over categories (most popular category first)."""
    pop = np.nan_to_num(snap.item_feats[:, ITEM_FEATURES.index("decayed_popularity")], nan=0.0)
    idx = np.flatnonzero(allowed)
    if len(idx) == 0:
        return idx
    cats = snap.item_category[idx]
    order = np.lexsort((idx, -pop[idx], cats))
    idx, cats = idx[order], cats[order]
    within = positions_in_rows(cats)
    cat_pop = pd.Series(pop[idx]).groupby(cats).transform("max").to_numpy()
    final = np.lexsort((idx, -cat_pop, within))
    return idx[final][:n]


def _bought_excluded(
    snap: SnapshotArrays, users: np.ndarray, items: np.ndarray, cfg: RecommendConfig
) -> np.ndarray:
    """True for (user, item) pairs the re-purchase rule hides (arrays of equal length)."""
    if cfg.repurchase == "ranker":
        return np.zeros(len(items), dtype=bool)
    if cfg.repurchase not in ("auto", "exclude"):
        raise ValueError(f"repurchase must be auto, exclude or ranker, not {cfg.repurchase!r}")
    pos, found = snap.user_item_lookup(users, items)
    n_purch = np.zeros(len(items))
    since = np.full(len(items), np.inf)
    n_purch[found] = np.nan_to_num(
        snap.ui_feats[pos[found], USER_ITEM_FEATURES.index("n_purchases")], nan=0.0
    )
    since[found] = np.nan_to_num(
        snap.ui_feats[pos[found], USER_ITEM_FEATURES.index("days_since_last_purchase")], nan=np.inf
    )
    mask = (n_purch > 0) & (since <= cfg.repurchase_window_days)
    if cfg.repurchase == "auto":
        repeat_rate = np.nan_to_num(
            snap.item_feats[items, ITEM_FEATURES.index("category_repeat_rate")], nan=0.0
        )
        mask &= repeat_rate < cfg.durable_repeat_rate
    return mask


def _drift_adjusted(
    scores: np.ndarray, row: np.ndarray, X: np.ndarray, n_rows: int, cfg: RecommendConfig
) -> np.ndarray:
    """Add drift_boost x (user's score spread) x drift of the item's category for drifting users.

    `cat.drift` is short-term minus long-term share, and 0 when the user has no recent events,
    so only users active recently in new categories are moved. The spread is the standard
    deviation (ddof 1, 0 for a single candidate) of the user's scores.
    """
    drift = np.nan_to_num(X[:, _F["cat.drift"]], nan=0.0)
    if len(row) == 0:
        return scores
    if (np.diff(row) < 0).any():
        raise ValueError("candidate rows must be grouped by user (sorted by row)")
    starts = np.flatnonzero(positions_in_rows(row) == 0)
    users = row[starts]
    max_drift = np.zeros(n_rows)
    max_drift[users] = np.maximum.reduceat(np.abs(drift), starts)
    count = np.bincount(row, minlength=n_rows)
    mean = np.bincount(row, weights=scores, minlength=n_rows) / np.maximum(count, 1)
    sq = np.bincount(row, weights=(scores - mean[row]) ** 2, minlength=n_rows)
    spread = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)), 0.0)
    drifting = max_drift[row] >= cfg.drift_threshold
    return scores + np.where(drifting, cfg.drift_boost * spread[row] * drift, 0.0)


def _category_capped(
    row: np.ndarray, item: np.ndarray, score: np.ndarray, cats: np.ndarray, cap: int | None
) -> np.ndarray:
    """Mask keeping at most `cap` best-scored items per (user, category)."""
    if not cap or len(row) == 0:
        return np.ones(len(row), dtype=bool)
    order = np.lexsort((item, -score, cats, row))
    key = row[order].astype(np.int64) * (int(cats.max()) + 1) + cats[order]
    within = positions_in_rows(key)
    keep = np.zeros(len(row), dtype=bool)
    keep[order] = within < cap
    return keep


def _coldstart_lists(
    snap: SnapshotArrays,
    users: np.ndarray,
    allowed: np.ndarray,
    k: int,
    cap: int | None,
    spread: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Trending items in the categories of the users' events (affinity-weighted), then popular
    items spread over categories; score is 1/rank (the list is ordered, not scored)."""
    f = snap.item_feats
    trend = (
        np.nan_to_num(
            f[:, ITEM_FEATURES.index("n_users_7d")] * f[:, ITEM_FEATURES.index("trend")]
            + 0.1 * f[:, ITEM_FEATURES.index("n_users_30d")],
            nan=0.0,
        )
        * allowed
    )
    per_cat = csr_row_topn(
        sp.csr_matrix(
            (trend, (snap.item_category, np.arange(snap.n_items))),
            shape=(len(snap.categories), snap.n_items),
        ),
        k,
    )
    cat_items = sp.csr_matrix(
        (per_cat.score, (per_cat.row, per_cat.item)), shape=(len(snap.categories), snap.n_items)
    )
    top = csr_row_topn(snap.affinity[users] @ cat_items, 3 * k)
    keep = _category_capped(top.row, top.item, top.score, snap.item_category[top.item], cap)
    items, _ = top_k(top.row[keep], top.item[keep], top.score[keep], len(users), k)
    no_history = (items < 0).all(axis=1)
    if no_history.any() and len(spread):  # users without events: the same spread list, in bulk
        head = spread[:k]
        items[no_history, : len(head)] = head
    fill_rows(items, np.arange(k), spread, snap.item_category, cap)
    score = np.where(items >= 0, 1.0 / np.arange(1, k + 1)[None, :], np.nan)
    return items, score


def _explore_picks(
    draws: np.ndarray,
    pool_items: np.ndarray,
    pool_cats: np.ndarray,
    ranked_cats: np.ndarray,
    n_exp: int,
    cap: int | None,
) -> np.ndarray:
    """Indices into the pool of the n_exp best draws per user, respecting the category cap."""
    draws = draws.copy()
    picks = np.full((draws.shape[0], n_exp), -1, dtype=np.int64)
    counts = None
    if cap:
        counts = (ranked_cats[:, :, None] == pool_cats[None, None, :]).sum(axis=1)
    rows = np.arange(draws.shape[0])
    for j in range(n_exp):
        if cap:
            draws = np.where(counts >= cap, -np.inf, draws)
        best = np.argmax(draws, axis=1)
        ok = np.isfinite(draws[rows, best])
        picks[ok, j] = best[ok]
        draws[rows[ok], best[ok]] = -np.inf
        if cap:
            counts[rows[ok]] += pool_cats[None, :] == pool_cats[best[ok]][:, None]
    return picks


def _explore_taken(
    snap: SnapshotArrays,
    users: np.ndarray,
    ranked: np.ndarray,
    pool_items: np.ndarray,
    cfg: RecommendConfig,
) -> np.ndarray:
    """(users, pool) mask of pool items a user may not explore: already in the ranked part of
    the list, or hidden by the re-purchase rule (checked only where the user met the item)."""
    n_pool = len(pool_items)
    slot = np.full(snap.n_items, -1, dtype=np.int64)
    slot[pool_items] = np.arange(n_pool)
    taken = np.zeros((len(users), n_pool), dtype=bool)
    r, c = np.nonzero(ranked >= 0)
    s = slot[ranked[r, c]]
    taken[r[s >= 0], s[s >= 0]] = True
    met = snap.interactions[users][:, pool_items].tocoo()
    hidden = _bought_excluded(snap, users[met.row], pool_items[met.col], cfg)
    taken[met.row[hidden], met.col[hidden]] = True
    return taken


def _assemble(
    ranked: np.ndarray,
    ranked_score: np.ndarray,
    ranked_src: np.ndarray,
    exp_items: np.ndarray,
    exp_score: np.ndarray,
    exp_prop: np.ndarray,
    positions: np.ndarray,
    fallback: np.ndarray,
    cats: np.ndarray,
    cap: int | None,
    k: int,
):
    """Explored items at `positions`, ranked items elsewhere in order; empty non-explore slots
    are filled in place from `fallback` (source `popular`). Slots left empty (catalogue
    exhausted) stay -1 and are dropped when the rows are written."""
    n = ranked.shape[0]
    items = np.full((n, k), -1, dtype=np.int64)
    score = np.full((n, k), np.nan)
    src = np.full((n, k), 3, dtype=np.int8)
    prop = np.full((n, k), np.nan)
    other = np.setdiff1d(np.arange(k), positions)
    m = min(len(other), ranked.shape[1])
    items[:, other[:m]], score[:, other[:m]], src[:, other[:m]] = (
        ranked[:, :m],
        ranked_score[:, :m],
        ranked_src[:, :m],
    )
    if len(positions):
        cols = positions[: exp_items.shape[1]]
        ok = exp_items >= 0
        items[:, cols] = np.where(ok, exp_items, -1)
        score[:, cols] = np.where(ok, exp_score, np.nan)
        src[:, cols] = np.where(ok, 2, 3)
        prop[:, cols] = np.where(ok, exp_prop, np.nan)
    filled = fill_rows(items, other, fallback, cats, cap)
    src[filled] = 3
    score[filled] = np.nan
    return items, score, src, prop


def _baseline_ranked(
    snap: SnapshotArrays,
    view,
    users: np.ndarray,
    baseline: str,
    k: int,
    allowed: np.ndarray,
    cfg: RecommendConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """`baseline`'s top-k lists for `users` under the serving rules (allowed items, re-purchase,
    category cap); score is 1/rank (the list is ordered, not scored). Over-fetched 3x so the
    rules rarely leave a list short; `_assemble` pads what is left with popular items."""
    n_fetch = min(3 * k + len(cfg.exclude_items), snap.n_items)
    lists = baseline_lists(snap, view, users, n_fetch, cfg.candidates, names=(baseline,))
    items = lists[baseline]
    row = np.repeat(np.arange(len(users)), items.shape[1])
    item = items.ravel()
    rank = np.tile(np.arange(items.shape[1]), len(users))
    ok = item >= 0
    row, item, rank = row[ok], item[ok], rank[ok]
    # duplicates (a list padded with items it already holds) keep their first place
    first = np.unique(row.astype(np.int64) * snap.n_items + item, return_index=True)[1]
    keep = np.zeros(len(row), dtype=bool)
    keep[first] = True
    keep &= allowed[item] & ~_bought_excluded(snap, users[row], item, cfg)
    row, item, rank = row[keep], item[keep], rank[keep]
    score = -rank.astype(np.float64)
    capped = _category_capped(row, item, score, snap.item_category[item], cfg.category_cap)
    items_k, _ = top_k(row[capped], item[capped], score[capped], len(users), k)
    return items_k, np.where(items_k >= 0, 1.0 / np.arange(1, k + 1)[None, :], np.nan)


def recommend_batch(
    snap: SnapshotArrays,
    view,
    booster,
    users: np.ndarray,
    cfg: RecommendConfig,
    allowed: np.ndarray,
    pool,
    fallback: np.ndarray,
    seed: int,
    lists: ItemLists | None = None,
    baseline: str | None = None,
):
    """Top-K (items, scores, sources, propensities) for snapshot users `users`; `lists` are the
    shard's `item_lists` for `cfg.candidates` and `allowed`. With `baseline` (and no booster)
    warm users get that baseline's list."""
    k = cfg.top_k
    n_exp = min(n_explore_slots(k, cfg.explore), len(pool.items))
    positions = explore_positions(k, cfg.explore)[:n_exp]
    k_rank = k - n_exp
    n_events = np.nan_to_num(snap.user_feats[users, USER_FEATURES.index("n_events")], nan=0.0)
    warm = n_events >= cfg.cold_max_events
    ranked = np.full((len(users), k_rank), -1, dtype=np.int64)
    ranked_score = np.full((len(users), k_rank), np.nan)
    ranked_src = np.full((len(users), k_rank), 0, dtype=np.int8)
    cats = snap.item_category
    if warm.any() and baseline:
        wu = users[warm]
        r, s = _baseline_ranked(snap, view, wu, baseline, k_rank, allowed, cfg)
        ranked[warm], ranked_score[warm] = r, s
        ranked_src[warm] = SOURCE_NAMES.index("baseline")
    elif warm.any():
        wu = users[warm]
        sc = scored_candidates(
            snap,
            view,
            wu,
            cfg.candidates,
            booster=booster,
            allowed=allowed,
            num_threads=cfg.threads,
            lists=lists,
        )
        c = sc.cands
        scores = _drift_adjusted(sc.scores, c.row, sc.X, len(wu), cfg)
        keep = ~_bought_excluded(snap, wu[c.row], c.item, cfg)
        keep &= _category_capped(c.row, c.item, scores, cats[c.item], cfg.category_cap)
        r, s = top_k(c.row[keep], c.item[keep], scores[keep], len(wu), k_rank)
        ranked[warm], ranked_score[warm] = r, s
    if (~warm).any():
        cu = users[~warm]
        r, s = _coldstart_lists(snap, cu, allowed, k_rank, cfg.category_cap, fallback)
        ranked[~warm], ranked_score[~warm] = r, s
        ranked_src[~warm] = 1
    exp_items = np.full((len(users), n_exp), -1, dtype=np.int64)
    exp_score = np.full((len(users), n_exp), np.nan)
    exp_prop = np.full((len(users), n_exp), np.nan)
    if n_exp:
        raw = thompson_draws(pool, user_hashes(snap.user_ids[users], seed))
        draws = np.where(_explore_taken(snap, users, ranked, pool.items, cfg), -np.inf, raw)
        ranked_cats = np.where(ranked >= 0, cats[np.maximum(ranked, 0)], -1)
        pick = _explore_picks(
            draws, pool.items, cats[pool.items], ranked_cats, n_exp, cfg.category_cap
        )
        ok = pick >= 0
        safe = np.maximum(pick, 0)
        exp_items = np.where(ok, pool.items[safe], -1)
        exp_score = np.where(ok, np.take_along_axis(raw, safe, axis=1), np.nan)
        exp_prop = np.where(ok, pool.propensity[safe], np.nan)
    return _assemble(
        ranked,
        ranked_score,
        ranked_src,
        exp_items,
        exp_score,
        exp_prop,
        positions,
        fallback,
        cats,
        cfg.category_cap,
        k,
    )


def user_recommendations(
    warehouse: Path,
    shard: int,
    n_shards: int,
    booster_path: str,
    mf_path: str,
    cfg: RecommendConfig,
    model_version: str,
    run_id: str,
    generated_at: datetime,
    out_path: str,
    ranker_lib: str | None = None,
    baseline: str | None = None,
    shard_inputs: str | None = None,
) -> ShardResult:
    """Score every user of shard `shard` of `n_shards` and write their rows to `out_path` (Parquet;
    its directory must exist: the publish transaction owns it). `shard_inputs` is where
    `shard_inputs(warehouse, n_shards)` split the serve snapshot's users by shard (without it
    the shard filters the warehouse's tables, reading them whole).

    `ranker_lib` is the booster compiled to native code (same scores, faster); without it the
    LightGBM booster scores. `baseline` (with an empty `booster_path`) serves that baseline's
    lists instead of a ranker's (a model version registered when no ranker could be trained)."""
    with stage("scoring_shard", part=str(shard)) as st:
        result = _shard_recommendations(
            warehouse, shard, n_shards, booster_path, mf_path, cfg, model_version, run_id,
            generated_at, out_path, ranker_lib, baseline, shard_inputs,
        )  # fmt: skip
        st.rows_in, st.rows_out = result.n_users, result.n_rows
    return result


def _shard_recommendations(
    warehouse: Path,
    shard: int,
    n_shards: int,
    booster_path: str,
    mf_path: str,
    cfg: RecommendConfig,
    model_version: str,
    run_id: str,
    generated_at: datetime,
    out_path: str,
    ranker_lib: str | None,
    baseline: str | None,
    shard_inputs: str | None,
) -> ShardResult:
    t0 = time.perf_counter()
    snap = snapshot_arrays(warehouse, "serve", shard=(shard, n_shards), shard_inputs=shard_inputs)
    view = embedding_view(snap, ALSEmbeddings.load(mf_path))
    booster = None if baseline else ranker_scorer(booster_path, ranker_lib, cfg.threads)
    if booster is not None and list(booster.feature_name()) != list(FEATURE_NAMES):
        raise ValueError(
            f"model {model_version} expects features {booster.feature_name()[:5]}..., "
            "which this version of recpipe does not produce; retrain it"
        )
    allowed = allowed_items(snap, cfg.exclude_items)
    pool = explore_pool(snap, allowed, cfg.top_k, cfg.explore)
    fallback = spread_popular(snap, allowed, cfg.top_k * 3)
    lists = item_lists(snap, cfg.candidates, allowed)
    loaded = time.perf_counter()
    users = np.arange(snap.n_users)
    batches = []
    for start in range(0, len(users), cfg.batch_users):
        batch = users[start : start + cfg.batch_users]
        items, score, src, prop = recommend_batch(
            snap,
            view,
            booster,
            batch,
            cfg,
            allowed,
            pool,
            fallback,
            cfg.explore.seed,
            lists,
            baseline=baseline,
        )
        batches.append(_batch_rows(snap, batch, items, score, src, prop))
    scored = time.perf_counter()
    table = _shard_table(batches, model_version, run_id, generated_at)
    if not Path(out_path).parent.is_dir():  # never re-create a version an interrupted run removed
        raise PublishError(f"{Path(out_path).parent}: the version directory is gone")
    pq.write_table(table, out_path, compression="zstd")
    counts = sum(
        (np.bincount(b["source"], minlength=len(SOURCE_NAMES)) for b in batches),
        np.zeros(len(SOURCE_NAMES), dtype=np.int64),
    )
    seconds = time.perf_counter() - t0
    logger.info(
        "shard %d/%d: %d users, %d rows in %.1fs (load %.1fs, score %.1fs, write %.1fs)",
        shard,
        n_shards,
        len(users),
        table.num_rows,
        seconds,
        loaded - t0,
        scored - loaded,
        t0 + seconds - scored,
    )
    return ShardResult(
        str(out_path),
        shard,
        len(users),
        table.num_rows,
        seconds,
        {name: int(c) for name, c in zip(SOURCE_NAMES, counts, strict=True) if c},
    )


def default_list(
    warehouse: Path,
    cfg: RecommendConfig,
    model_version: str,
    run_id: str,
    generated_at: datetime,
    out_path: str,
) -> int:
    """Write the list for a user the table does not hold (first seen after the cutoff, or a
    guest): the cold-start list of a user without events, popular showable items spread over
    categories (source `coldstart`, score 1/rank, no exploration slots). Returns its length.

    Columns as the table's, without `user_id` and `propensity`."""
    users = snapshot_user_ids(warehouse, "serve")
    snap = snapshot_arrays(warehouse, "serve", only_user_ids=users[:1])  # the items, whole
    allowed = allowed_items(snap, cfg.exclude_items)
    items = spread_popular(snap, allowed, cfg.top_k)
    n = len(items)
    table = pa.table(
        {
            "rank": pa.array(np.arange(1, n + 1), type=pa.int32()),
            "item_id": pa.array(snap.item_ids[items]),
            "score": pa.array(1.0 / np.arange(1, n + 1), type=pa.float64()),
            "source": pa.repeat(pa.scalar("coldstart", type=pa.string()), n),
            **_run_columns(model_version, run_id, generated_at, n),
        }
    )
    if not Path(out_path).parent.is_dir():
        raise PublishError(f"{Path(out_path).parent}: the version directory is gone")
    pq.write_table(table, out_path, compression="zstd")
    return n


def _batch_rows(
    snap: SnapshotArrays,
    batch: np.ndarray,
    items: np.ndarray,
    score: np.ndarray,
    src: np.ndarray,
    prop: np.ndarray,
) -> dict[str, np.ndarray]:
    """The filled slots of a batch's (users, K) lists as columns; ranks count filled slots, so
    they run 1..n without gaps when impossible slots (catalogue exhausted) are dropped. Scores
    are stored at the float32 precision they were ranked at (`row_order`), so the stored scores
    of a list never increase with rank, even where two differ only beyond float32."""
    valid = items >= 0
    return {
        "user_id": np.repeat(snap.user_ids[batch], valid.sum(axis=1)),
        "rank": np.cumsum(valid, axis=1, dtype=np.int32)[valid],
        "item_id": snap.item_ids[items[valid]],
        "score": score[valid].astype(np.float32).astype(np.float64),
        "source": src[valid],
        "propensity": prop[valid],
    }


def _shard_table(
    batches: list[dict[str, np.ndarray]], model_version: str, run_id: str, generated_at: datetime
) -> pa.Table:
    """One Arrow table of the shard's rows (built without pandas: a million rows a shard)."""
    empty = {
        "user_id": np.zeros(0, dtype=np.int64),
        "rank": np.zeros(0, dtype=np.int32),
        "item_id": np.zeros(0, dtype=np.int64),
        "score": np.zeros(0),
        "source": np.zeros(0, dtype=np.int8),
        "propensity": np.zeros(0),
    }
    cols = {
        name: np.concatenate([b[name] for b in batches]) if batches else col
        for name, col in empty.items()
    }
    n = len(cols["rank"])
    sources = pa.array(SOURCE_NAMES, type=pa.string())
    return pa.table(
        {
            "user_id": pa.array(cols["user_id"]),
            "rank": pa.array(cols["rank"], type=pa.int32()),
            "item_id": pa.array(cols["item_id"]),
            "score": pa.array(cols["score"], type=pa.float64(), from_pandas=True),  # NaN -> null
            "source": sources.take(pa.array(cols["source"], type=pa.int8())),
            "propensity": pa.array(cols["propensity"], type=pa.float64(), from_pandas=True),
            **_run_columns(model_version, run_id, generated_at, n),
        }
    )


def _run_columns(
    model_version: str, run_id: str, generated_at: datetime, n: int
) -> dict[str, pa.Array]:
    """The columns every published row repeats: model version, run id and generation time
    (naive UTC, microseconds)."""
    stamp = pd.Timestamp(generated_at)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp
    return {
        "model_version": pa.repeat(pa.scalar(str(model_version), type=pa.string()), n),
        "run_id": pa.repeat(pa.scalar(str(run_id), type=pa.string()), n),
        "generated_at": pa.repeat(
            pa.scalar(stamp.as_unit("us").to_pydatetime(), type=pa.timestamp("us")), n
        ),
    }
