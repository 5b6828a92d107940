"""Ranker quality on the `small` synthetic shop: it beats the baselines, recovers the planted
interests, and follows the planted repeat-purchase structure.

Each shop variant is built end to end once per module (ingest -> train/eval snapshots -> ALS ->
lambdarank -> offline evaluation). Thresholds sit well below the measured values (seed 11),
quoted next to each assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from model_helpers import ModelRun, model_run

from recpipe.tasks.evaluation.offline_evaluation import BASELINES
from recpipe.tasks.features.snapshot_arrays import USER_FEATURES, USER_ITEM_FEATURES
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow  # trains rankers on three small shops
VARIANTS = ("default", "consumable", "durable")


def _variant_run(tmp_path_factory, name: str, **overrides) -> ModelRun:
    root = tmp_path_factory.mktemp(f"quality_{name}")
    synthetic_shop(root / "shop", "small", seed=11, **overrides)
    return model_run(root / "shop", root)


@pytest.fixture(scope="module")
def default_run(small_shop, tmp_path_factory) -> ModelRun:
    """The conftest `small` shop (seed 11, 30% consumable categories)."""
    return model_run(small_shop, tmp_path_factory.mktemp("quality_default"))


@pytest.fixture(scope="module")
def consumable_run(tmp_path_factory) -> ModelRun:
    """Every category is re-bought periodically."""
    return _variant_run(tmp_path_factory, "consumable", consumable_share=1.0)


@pytest.fixture(scope="module")
def durable_run(tmp_path_factory) -> ModelRun:
    """No category is ever re-bought: one purchase per (user, item)."""
    return _variant_run(tmp_path_factory, "durable", consumable_share=0.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ranker_beats_every_baseline(variant, request):
    m = request.getfixturevalue(f"{variant}_run").evaluation.metrics
    for metric, factor in (("ndcg_at_10", 1.10), ("recall_at_20", 1.04)):
        base = {b: m[f"baseline.{b}.{metric}"] for b in BASELINES}
        best = max(base, key=base.get)
        print(
            f"{variant} {metric}: ranker {m[metric]:.4f}, best baseline {best} {base[best]:.4f} "
            f"(x{m[metric] / base[best]:.3f}); all { ({k: round(v, 4) for k, v in base.items()}) }"
        )
        # measured (default / consumable / durable), best baseline mf except buy-again for
        # ndcg_at_10 on the consumable shop (0.374; mf 0.343):
        #   ndcg_at_10   x1.229 / x1.260 / x1.134 (0.354 vs 0.288 on default)
        #   recall_at_20 x1.080 / x1.063 / x1.050 (0.490 vs 0.454 on default)
        assert m[metric] >= factor * base[best], (variant, metric, m[metric], best, base[best])
        # the non-personalised baselines are far behind (measured x2.2 to x5.8)
        assert m[metric] >= 2.0 * max(base["popularity"], base["recent_popularity"])


def _top2_interests(run: ModelRun, weight: str) -> pd.Series:
    """Each user's two strongest latent categories by `weight` (weight_before / weight_after)."""
    gt = pd.read_parquet(run.shop / "ground_truth" / "user_interests.parquet")
    top2 = gt.sort_values(["user_id", weight], ascending=[True, False]).groupby("user_id").head(2)
    return top2.groupby("user_id")["category"].agg(frozenset)


def _mode_category(run: ModelRun, lists: np.ndarray) -> np.ndarray:
    """Most frequent category of each list (ties: the alphabetically first)."""
    snap = run.snaps["eval"]
    out = []
    for row in lists:
        vals, counts = np.unique(
            snap.categories[snap.item_category[row[row >= 0]]], return_counts=True
        )
        out.append(vals[np.argmax(counts)])
    return np.asarray(out, dtype=object)


def _share_in(modes: np.ndarray, ids: np.ndarray, top2: pd.Series) -> np.ndarray:
    return np.array([m in top2[u] for m, u in zip(modes, ids, strict=True)], dtype=bool)


def test_planted_interests_are_recovered(default_run):
    run = default_run
    snap = run.snaps["eval"]
    after, before = _top2_interests(run, "weight_after"), _top2_interests(run, "weight_before")
    gt = pd.read_parquet(run.shop / "ground_truth" / "user_interests.parquet")
    drifters = gt.loc[gt.drifts & (gt.drift_ts < pd.Timestamp(snap.as_of)), "user_id"].unique()
    n_events = np.nan_to_num(snap.user_feats[:, USER_FEATURES.index("n_events")], nan=0.0)
    users = np.flatnonzero((n_events >= 20) & np.isin(snap.user_ids, after.index))
    ids = snap.user_ids[users]
    hit = _share_in(_mode_category(run, run.ranked_top(users, 10)), ids, after)
    drift = np.isin(ids, drifters)
    hit_before = _share_in(
        _mode_category(run, run.ranked_top(users[drift], 10)), ids[drift], before
    )
    # the same question for a non-personalised list: the all-time popularity top 10
    pop_mode = _mode_category(run, np.array([_popular_top10(run)]))[0]
    pop_hit = np.array([pop_mode in after[u] for u in ids])
    print(
        f"{len(users)} users with >= 20 events: top-10 mode category among their top-2 latent "
        f"categories for {hit.mean():.3f} (popularity list: {pop_hit.mean():.3f}); "
        f"{drift.sum()} drifters: {hit[drift].mean():.3f} after the drift, "
        f"{hit_before.mean():.3f} before"
    )
    assert len(users) >= 300  # measured 722
    assert hit.mean() >= 0.80  # measured 0.922
    assert hit.mean() >= pop_hit.mean() + 0.4  # measured 0.922 vs 0.291
    assert drift.sum() >= 50  # measured 119
    assert hit[drift].mean() >= 0.60  # measured 0.773
    assert hit[drift].mean() >= hit_before.mean() + 0.3  # measured 0.773 vs 0.176


def _popular_top10(run: ModelRun) -> np.ndarray:
    from recpipe.tasks.candidates.candidate_sets import global_top

    snap = run.snaps["eval"]
    return global_top(snap, 10, "alltime", np.ones(snap.n_items, dtype=bool))[0]


def _bought_in_top(run: ModelRun, k: int = 10) -> np.ndarray:
    """(buyers x k) bool: slot holds an item the user purchased before the eval cutoff.

    Buyers are the eval snapshot's users with `n_purchases > 0` on some item.
    """
    snap = run.snaps["eval"]
    bought = snap.ui_feats[:, USER_ITEM_FEATURES.index("n_purchases")] > 0
    rows = np.repeat(np.arange(snap.n_users), np.diff(snap.interactions.indptr))
    keys = pd.Index(
        rows[bought].astype(np.int64) * snap.n_items + snap.interactions.indices[bought]
    )
    buyers = np.unique(rows[bought])
    top = run.ranked_top(buyers, k)
    slot_keys = buyers[:, None].astype(np.int64) * snap.n_items + top
    return (keys.get_indexer(slot_keys.ravel()).reshape(top.shape) >= 0) & (top >= 0)


@pytest.fixture(scope="module")
def repeat_stats(consumable_run, durable_run) -> dict[str, dict[str, float]]:
    out = {}
    for name, run in (("consumable", consumable_run), ("durable", durable_run)):
        b = _bought_in_top(run)
        out[name] = {
            "buyers": len(b),
            "top1": b[:, 0].mean(),
            "any3": b[:, :3].any(1).mean(),
            "any10": b.any(1).mean(),
            "per_user10": b.sum(1).mean(),
        }
        print(name, {k: round(float(v), 3) for k, v in out[name].items()})
    return out


def test_repeat_purchases_follow_the_category_kind(repeat_stats):
    """Re-buying shops get their bought items back on top; durable shops much less so.

    Measured (seed 11; an earlier code version with seed 5 in brackets), share of buyers whose
    list has a bought item: consumable top-1 1.000 (0.998), top-3 1.000 (1.000), top-10 1.000
    (1.000); durable top-1 0.277 (0.437), top-3 0.618 (0.715), top-10 0.914 (0.880).
    """
    c, d = repeat_stats["consumable"], repeat_stats["durable"]
    assert c["buyers"] >= 500 and d["buyers"] >= 500  # measured 876 / 909
    assert c["any10"] >= 0.90 and c["top1"] >= 0.90
    assert d["top1"] <= 0.60
    assert d["top1"] <= c["top1"] - 0.30
    assert d["any3"] <= c["any3"] - 0.15
    assert d["per_user10"] < c["per_user10"]  # measured 1.61 vs 2.09


# Not asserted here: that the ranker alone (almost) never ranks bought durables. Labels count
# any interaction and 20% of bought durable pairs are viewed again in the label week, so for
# its objective the ranker rightly keeps them (91% of buyers get one in the top 10). Hiding
# them is the recommendation job's re-purchase rule (`repurchase="auto"`), tested on the
# published lists in tests/model/test_user_recommendations.py.


def test_cold_segment_metric_is_reported(default_run):
    m = default_run.evaluation.metrics
    n_cold = m["segment.cold.n_users"]
    cold, cold_pop = m["segment.cold.ndcg_at_10"], m["segment.cold.baseline.popularity.ndcg_at_10"]
    print(f"cold segment: {n_cold:.0f} users, ndcg_at_10 {cold:.4f} (popularity {cold_pop:.4f})")
    assert n_cold > 0  # measured 77
    assert math.isfinite(cold) and 0.0 < cold <= 1.0  # measured 0.218
    assert cold >= cold_pop  # measured 0.218 vs 0.064
