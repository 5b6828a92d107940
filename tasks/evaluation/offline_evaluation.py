"""Leak-free offline evaluation: the ranker and the baselines scored by the same code.

Everything is computed from the `eval` snapshot (features as of `as_of - h`) against labels
from `[as_of - h, as_of)`. Baselines: global popularity, recent popularity, buy-again (the
user's own purchases by count, then recency: the strong simple competitor on repeat-purchase
shops), MF only, co-visitation only; each padded with global popularity to K like the ranker. Metrics are
also split by user segment (cold / warm / heavy by events before the cutoff) and for new
items (younger than `new_item_days` at the cutoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from recpipe.tasks.candidates.candidate_sets import (
    SOURCES,
    CandidateConfig,
    bought_items,
    candidate_set,
    global_top,
    item_lists,
    mf_topn,
)
from recpipe.tasks.common.row_order import positions_in_rows, row_value_order
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.evaluation import ranking_metrics as rm
from recpipe.tasks.features.ranking_labels import LabelSet, sampled_label_rows
from recpipe.tasks.features.snapshot_arrays import (
    ITEM_FEATURES,
    USER_FEATURES,
    SnapshotArrays,
)
from recpipe.tasks.models.candidate_scoring import (
    EmbeddingView,
    pad_lists,
    scored_candidates,
    top_k,
)

logger = logging.getLogger(__name__)
BASELINES = ("popularity", "recent_popularity", "buy_again", "mf", "covis")


@config_dataclass(frozen=True)
class EvalConfig:
    """How the offline evaluation samples users, scores lists and cuts segments."""

    k: int = Field(50, ge=20, description="List length scored (metrics use @10, @20, @50).")
    cold_max_events: int = Field(
        5, ge=1, description="Users with fewer events are the cold segment."
    )
    heavy_min_events: int = Field(
        100, ge=2, description="Users with at least this many events are heavy."
    )
    new_item_days: float = Field(
        14.0, gt=0, description="Items younger than this count as new items."
    )
    max_users: int = Field(20_000, ge=10, description="Labelled users sampled for evaluation.")
    seed: int = Field(7, description="Seed of the user sample.")


@dataclass
class EvaluationResult:
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    n_users: int = 0
    best_baseline: str = ""


def _metrics(
    recs: np.ndarray, truth: sp.csr_matrix, snap: SnapshotArrays, prefix: str
) -> dict[str, float]:
    n_cols = truth.shape[1]
    pop = np.zeros(n_cols)
    pop[: snap.n_items] = np.nan_to_num(snap.item_feats[:, ITEM_FEATURES.index("n_users_all")])
    cat = np.full(n_cols, -1, dtype=np.int64)
    cat[: snap.n_items] = snap.item_category
    n_pop_users = max(int(np.sum(~np.isnan(snap.user_feats[:, 0]))), 1)
    return rm.metric_table(
        recs,
        truth,
        ks_ndcg=(10, 20),
        ks_recall=(10, 20, 50),
        item_popularity=pop,
        n_users_popularity=n_pop_users,
        item_category=cat,
        n_items=snap.n_items,
        prefix=prefix,
    )


def evaluation_users(
    snap: SnapshotArrays, labels: LabelSet, cfg: EvalConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot positions of (a seeded sample of) labelled users and their truth rows."""
    rows = sampled_label_rows(snap.user_ids, labels, cfg.max_users, np.random.default_rng(cfg.seed))
    return snap.user_index(labels.user_ids[rows]), rows


def baseline_lists(
    snap: SnapshotArrays,
    view: EmbeddingView,
    users: np.ndarray,
    k: int,
    cand_cfg: CandidateConfig,
    names: tuple[str, ...] = BASELINES,
) -> dict[str, np.ndarray]:
    """Top-k lists of each baseline in `names` for `users` (snapshot positions), padded with
    all-time popular items."""
    n = len(users)
    pop_items, _ = global_top(snap, max(k, 200), "alltime", np.ones(snap.n_items, bool))
    out = {}
    if "popularity" in names:
        out["popularity"] = pad_lists(_fixed(pop_items, n, k), pop_items)
    if "recent_popularity" in names:
        recent_items, _ = global_top(snap, k, "recent", np.ones(snap.n_items, bool))
        out["recent_popularity"] = pad_lists(_fixed(recent_items, n, k), pop_items)
    if "buy_again" in names:
        out["buy_again"] = pad_lists(buy_again_lists(snap, users, k), pop_items)
    if "mf" in names or "covis" in names:
        uv = view.user_vecs(snap, users)
    if "mf" in names:
        mf = mf_topn(uv, view.item_vecs, k, None, np.ones(snap.n_items, bool))
        out["mf"] = pad_lists(top_k(mf.row, mf.item, -mf.rank, n, k)[0], pop_items)
    if "covis" in names:
        cv = candidate_set(
            snap,
            users,
            uv,
            view.item_vecs,
            CandidateConfig(n_covis=k, covis_seeds=cand_cfg.covis_seeds, max_candidates=k),
            sources=("covis",),
        )
        out["covis"] = pad_lists(top_k(cv.row, cv.item, -cv.ranks["covis"], n, k)[0], pop_items)
    unknown = set(names) - set(out)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; known: {', '.join(BASELINES)}")
    return out


def buy_again_lists(snap: SnapshotArrays, users: np.ndarray, k: int) -> np.ndarray:
    """(len(users), k) items each user bought before the cutoff, most bought first, then most
    recently bought; -1 where a user bought fewer than k items."""
    bought = bought_items(snap, users, k)
    lists = np.full((len(users), k), -1, dtype=np.int64)
    lists[bought.row, bought.rank.astype(np.int64) - 1] = bought.item
    return lists


def _fixed(items: np.ndarray, n: int, k: int) -> np.ndarray:
    row = np.full(k, -1, dtype=np.int64)
    row[: len(items[:k])] = items[:k]
    return np.tile(row, (n, 1))


def offline_evaluation(
    snap: SnapshotArrays,
    view: EmbeddingView,
    labels: LabelSet,
    booster,
    cand_cfg: CandidateConfig,
    cfg: EvalConfig,
    batch_users: int = 5000,
    num_iteration: int | None = None,
) -> EvaluationResult:
    """Score the ranker and the baselines on the evaluation window; all metrics in one dict."""
    users, label_rows = evaluation_users(snap, labels, cfg)
    truth = labels.truth[label_rows]
    n, k = len(users), cfg.k
    pop_items, _ = global_top(snap, max(k, 200), "alltime", np.ones(snap.n_items, bool))
    ranker = np.full((n, k), -1, dtype=np.int64)
    cand_hits = {s: np.zeros(n) for s in (*SOURCES, "all", "top200")}
    cand_sizes = np.zeros(n)
    lists = item_lists(snap, cand_cfg)
    for start in range(0, n, batch_users):
        sl = slice(start, min(start + batch_users, n))
        sc = scored_candidates(
            snap,
            view,
            users[sl],
            cand_cfg,
            booster=booster,
            num_iteration=num_iteration,
            lists=lists,
        )
        recs, _ = top_k(sc.cands.row, sc.cands.item, sc.scores, sl.stop - sl.start, k)
        ranker[sl] = recs
        # candidate recall: share of the user's future positives present in the candidate set
        t = truth[sl]
        grade = np.asarray(t[sc.cands.row, sc.cands.item]).ravel()
        hit = grade > 0
        cand_hits["all"][sl] = np.bincount(sc.cands.row[hit], minlength=sl.stop - sl.start)
        # the first 200 by best source rank: comparable across caps (the union keeps that order)
        best = np.fmin.reduce([sc.cands.ranks[s] for s in SOURCES])
        order = row_value_order(sc.cands.row, best, sc.cands.item, descending=False)
        in_top = np.zeros(len(best), dtype=bool)
        in_top[order] = positions_in_rows(sc.cands.row[order]) < 200
        cand_hits["top200"][sl] = np.bincount(
            sc.cands.row[hit & in_top], minlength=sl.stop - sl.start
        )
        for s in SOURCES:
            m = hit & ~np.isnan(sc.cands.ranks[s])
            cand_hits[s][sl] = np.bincount(sc.cands.row[m], minlength=sl.stop - sl.start)
        cand_sizes[sl] = sc.cands.per_user()
        logger.info("evaluated %d/%d users", sl.stop, n)
    ranker = pad_lists(ranker, pop_items)
    lists = {"ranker": ranker, **baseline_lists(snap, view, users, k, cand_cfg)}

    res = EvaluationResult(n_users=n)
    n_pos = np.diff(truth.indptr).astype(float)
    for name, recs in lists.items():
        _score_list(res, name, recs, truth, snap)
    ok = n_pos > 0
    # recall of the whole (capped) set, and of its first 200 by best rank: one name in every run
    res.metrics["candidates.recall"] = float(np.mean(cand_hits["all"][ok] / n_pos[ok]))
    res.metrics["candidates.recall_at_200"] = float(np.mean(cand_hits["top200"][ok] / n_pos[ok]))
    for s in SOURCES:
        res.metrics[f"candidates.{s}.recall"] = float(np.mean(cand_hits[s][ok] / n_pos[ok]))
    res.metrics["candidates.mean_size"] = float(cand_sizes.mean())

    n_events = np.nan_to_num(snap.user_feats[users, USER_FEATURES.index("n_events")], nan=0.0)
    segments = {
        "cold": n_events < cfg.cold_max_events,
        "warm": (n_events >= cfg.cold_max_events) & (n_events < cfg.heavy_min_events),
        "heavy": n_events >= cfg.heavy_min_events,
    }
    for seg, mask in segments.items():
        res.metrics[f"segment.{seg}.n_users"] = float(mask.sum())
        if mask.sum() == 0:
            continue
        for name, recs in (("", ranker), ("baseline.popularity.", lists["popularity"])):
            t = truth[mask]
            res.metrics[f"segment.{seg}.{name}ndcg_at_10"] = float(
                np.nanmean(rm.ndcg_at_k(recs[mask], t, 10))
            )
            res.metrics[f"segment.{seg}.{name}recall_at_20"] = float(
                np.nanmean(rm.recall_at_k(recs[mask], t, 20))
            )
    # new vs established items: recall@20 restricted to positives on each kind of item
    age = snap.item_feats[:, ITEM_FEATURES.index("age_days")]
    is_new = np.zeros(truth.shape[1], dtype=bool)
    is_new[: snap.n_items] = np.nan_to_num(age, nan=0.0) < cfg.new_item_days
    is_new[snap.n_items :] = True  # first seen in the label window
    for seg, mask in (("new_items", is_new), ("established_items", ~is_new)):
        t = truth.multiply(mask[None, :]).tocsr()
        t.eliminate_zeros()
        res.metrics[f"segment.{seg}.n_positives"] = float(t.nnz)
        if t.nnz:
            res.metrics[f"segment.{seg}.recall_at_20"] = float(
                np.nanmean(rm.recall_at_k(ranker, t, 20))
            )
    res.best_baseline = best_baseline(res.metrics)
    base = res.metrics[f"baseline.{res.best_baseline}.ndcg_at_10"]
    res.metrics["lift.ndcg_at_10_over_best_baseline"] = (
        (res.metrics["ndcg_at_10"] / base - 1.0) if base > 0 else float("nan")
    )
    return res


def _score_list(
    res: EvaluationResult, name: str, recs: np.ndarray, truth: sp.csr_matrix, snap: SnapshotArrays
) -> None:
    """Metrics and the ndcg@K curve of one list into `res`: the ranker's unprefixed, a
    baseline's under `baseline.<name>.`."""
    key = "ranker" if name == "ranker" else f"baseline.{name}"
    res.metrics.update(_metrics(recs, truth, snap, "" if name == "ranker" else f"{key}."))
    res.curves[key] = rm.metric_at_k_curve(recs, truth, "ndcg", ks=(1, 2, 5, 10, 20, 50))


def _evaluation_inputs(warehouse, snapshot: str, emb_path: str, cfg: EvalConfig):
    """Snapshot `snapshot`'s arrays of the users `evaluation_users` picks (only theirs are
    loaded), the saved ALS factors' view of it, and its labels."""
    from recpipe.tasks.features.ranking_labels import label_set
    from recpipe.tasks.features.snapshot_arrays import (
        snapshot_arrays,
        snapshot_item_ids,
        snapshot_user_ids,
    )
    from recpipe.tasks.models.als_embeddings import ALSEmbeddings
    from recpipe.tasks.models.candidate_scoring import embedding_view

    labels = label_set(warehouse, snapshot, snapshot_item_ids(warehouse, snapshot))
    sampled = sampled_label_rows(
        snapshot_user_ids(warehouse, snapshot),
        labels,
        cfg.max_users,
        np.random.default_rng(cfg.seed),
    )
    snap = snapshot_arrays(warehouse, snapshot, only_user_ids=labels.user_ids[sampled])
    view = embedding_view(snap, ALSEmbeddings.load(emb_path))
    return snap, view, labels


def best_baseline(metrics: dict[str, float]) -> str:
    """The baseline with the highest ndcg_at_10 (the first of BASELINES on ties or NaN)."""
    scores = {
        b: np.nan_to_num(metrics.get(f"baseline.{b}.ndcg_at_10", np.nan), nan=-1.0)
        for b in BASELINES
    }
    return max(BASELINES, key=lambda b: scores[b])


FALLBACK_BASELINE = "buy_again"
"""Served when a ranker cannot be trained and the evaluation window has no labelled users to
choose a baseline by: the user's own purchases, then popular items."""


def baseline_evaluation(
    warehouse,
    snapshot: str,
    emb_path: str,
    cand_cfg: CandidateConfig,
    cfg: EvalConfig,
) -> EvaluationResult:
    """The baselines alone on snapshot `snapshot` and its labels (for a run that could not train
    a ranker): `baseline.*` metrics as in `offline_evaluation`, the best one's metrics also
    unprefixed (what the run serves) and `best_baseline` naming it."""
    import time

    t0 = time.perf_counter()
    snap, view, labels = _evaluation_inputs(warehouse, snapshot, emb_path, cfg)
    users, label_rows = evaluation_users(snap, labels, cfg)
    res = EvaluationResult(n_users=len(users))
    if len(users):
        truth = labels.truth[label_rows]
        for name, recs in baseline_lists(snap, view, users, cfg.k, cand_cfg).items():
            _score_list(res, name, recs, truth, snap)
        res.best_baseline = best_baseline(res.metrics)
        prefix = f"baseline.{res.best_baseline}."
        res.metrics.update(
            {k[len(prefix) :]: v for k, v in res.metrics.items() if k.startswith(prefix)}
        )
    else:
        res.best_baseline = FALLBACK_BASELINE
    res.metrics["timing.evaluation_seconds"] = time.perf_counter() - t0
    return res


def model_evaluation(
    warehouse,
    snapshot: str,
    emb_path: str,
    booster_path: str,
    cand_cfg: CandidateConfig,
    cfg: EvalConfig,
) -> EvaluationResult:
    """Evaluate a saved booster with saved embeddings on snapshot `snapshot` and its labels."""
    import time

    import lightgbm as lgb

    t0 = time.perf_counter()
    with stage("evaluation", part=snapshot) as st:
        snap, view, labels = _evaluation_inputs(warehouse, snapshot, emb_path, cfg)
        booster = lgb.Booster(model_file=str(booster_path))
        res = offline_evaluation(snap, view, labels, booster, cand_cfg, cfg)
        st.rows_in = res.n_users
    res.metrics["timing.evaluation_seconds"] = time.perf_counter() - t0
    return res
