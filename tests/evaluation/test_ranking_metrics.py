"""Tests for tasks.ranking_metrics: hand-computed cases plus a pure-Python reference."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recpipe.tasks.evaluation.ranking_metrics import (
    catalogue_coverage,
    hit_rate_at_k,
    intra_list_diversity_at_k,
    map_at_k,
    metric_at_k_curve,
    metric_table,
    mrr,
    ndcg_at_k,
    novelty_at_k,
    precision_at_k,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # 1.5849625...


def make_truth(rows: list[dict[int, float]], n_items: int) -> sp.csr_matrix:
    """Build a (n_users, n_items) CSR truth matrix from one {item: grade} dict per user."""
    r, c, v = [], [], []
    for u, row in enumerate(rows):
        for item, grade in row.items():
            r.append(u)
            c.append(item)
            v.append(grade)
    return sp.csr_matrix((v, (r, c)), shape=(len(rows), n_items), dtype=np.float64)


# ----------------------------------------------------------------- hand-computed example
# One user, n_items = 8, relevant items {2: grade 3, 5: grade 1}, recs [5, 7, 2].
ONE_RECS = np.array([[5, 7, 2]])
ONE_TRUTH = make_truth([{2: 3, 5: 1}], n_items=8)


def test_ndcg_hand_computed_exponential() -> None:
    # DCG@3  = (2^1-1)/log2(2) + 0/log2(3) + (2^3-1)/log2(4) = 1 + 0 + 7/2 = 4.5
    # IDCG@3 = ideal order [grade 3, grade 1] = 7/log2(2) + 1/log2(3) = 7 + 0.6309 = 7.6309
    expected = 4.5 / (7 + 1 / LOG2_3)  # = 0.58971
    np.testing.assert_allclose(ndcg_at_k(ONE_RECS, ONE_TRUTH, 3), [expected])
    # @1: DCG = (2^1-1)/1 = 1, IDCG = 7/1 = 7 -> 1/7
    np.testing.assert_allclose(ndcg_at_k(ONE_RECS, ONE_TRUTH, 1), [1 / 7])


def test_ndcg_hand_computed_linear() -> None:
    # DCG@3  = 1/log2(2) + 3/log2(4) = 1 + 1.5 = 2.5
    # IDCG@3 = 3/log2(2) + 1/log2(3) = 3 + 0.6309 = 3.6309
    expected = 2.5 / (3 + 1 / LOG2_3)
    np.testing.assert_allclose(ndcg_at_k(ONE_RECS, ONE_TRUTH, 3, gains="linear"), [expected])
    with pytest.raises(ValueError):
        ndcg_at_k(ONE_RECS, ONE_TRUTH, 3, gains="log")  # type: ignore[arg-type]


def test_ndcg_k_larger_than_list_uses_whole_list() -> None:
    # K_max = 3 < k = 10: DCG unchanged (4.5); IDCG@10 still only has two items.
    expected = 4.5 / (7 + 1 / LOG2_3)
    np.testing.assert_allclose(ndcg_at_k(ONE_RECS, ONE_TRUTH, 10), [expected])


def test_recall_precision_hit_rate_hand_computed() -> None:
    # min_grade=1: relevant {2, 5}; hits at ranks 1 (item 5) and 3 (item 2).
    np.testing.assert_allclose(recall_at_k(ONE_RECS, ONE_TRUTH, 1), [1 / 2])  # 1 hit / 2 rel
    np.testing.assert_allclose(recall_at_k(ONE_RECS, ONE_TRUTH, 3), [2 / 2])
    np.testing.assert_allclose(precision_at_k(ONE_RECS, ONE_TRUTH, 3), [2 / 3])
    # precision divides by k even when the list is shorter: 2 hits / 5
    np.testing.assert_allclose(precision_at_k(ONE_RECS, ONE_TRUTH, 5), [2 / 5])
    np.testing.assert_allclose(hit_rate_at_k(ONE_RECS, ONE_TRUTH, 1), [1.0])
    # min_grade=2: only item 2 (grade 3) is relevant; it sits at rank 3.
    np.testing.assert_allclose(recall_at_k(ONE_RECS, ONE_TRUTH, 1, min_grade=2), [0.0])
    np.testing.assert_allclose(recall_at_k(ONE_RECS, ONE_TRUTH, 3, min_grade=2), [1.0])
    np.testing.assert_allclose(hit_rate_at_k(ONE_RECS, ONE_TRUTH, 2, min_grade=2), [0.0])
    np.testing.assert_allclose(hit_rate_at_k(ONE_RECS, ONE_TRUTH, 3, min_grade=2), [1.0])
    np.testing.assert_allclose(precision_at_k(ONE_RECS, ONE_TRUTH, 3, min_grade=2), [1 / 3])


def test_map_hand_computed() -> None:
    # hits@3 = [1, 0, 1]; P@1 = 1, P@3 = 2/3; AP@3 = (1 + 2/3) / min(3, 2) = 5/6
    np.testing.assert_allclose(map_at_k(ONE_RECS, ONE_TRUTH, 3), [5 / 6])
    # hits@1 = [1]; AP@1 = P@1 / min(1, 2) = 1
    np.testing.assert_allclose(map_at_k(ONE_RECS, ONE_TRUTH, 1), [1.0])
    # min_grade=2: hits@3 = [0, 0, 1]; AP@3 = P@3 / min(3, 1) = (1/3) / 1
    np.testing.assert_allclose(map_at_k(ONE_RECS, ONE_TRUTH, 3, min_grade=2), [1 / 3])


def test_mrr_hand_computed() -> None:
    # first hit at rank 1 -> 1/1
    np.testing.assert_allclose(mrr(ONE_RECS, ONE_TRUTH), [1.0])
    # min_grade=2: first hit (item 2) at rank 3 -> 1/3
    np.testing.assert_allclose(mrr(ONE_RECS, ONE_TRUTH, min_grade=2), [1 / 3])
    # ... but it is outside the top 2 -> 0
    np.testing.assert_allclose(mrr(ONE_RECS, ONE_TRUTH, min_grade=2, k=2), [0.0])


# --------------------------------------------------------------------------- padding
def test_padding_never_counts_as_hit() -> None:
    # Item 3 is the *last* item: naive numpy indexing with -1 would alias it.
    truth = make_truth([{3: 3}, {3: 1}, {0: 1}], n_items=4)
    recs = np.array(
        [
            [0, -1, -1],  # user 0: one real miss, then padding
            [-1, -1, -1],  # user 1: empty list
            [-1, -1, -1],  # user 2: empty list
        ]
    )
    for k in (1, 3, 10):
        np.testing.assert_array_equal(ndcg_at_k(recs, truth, k), [0, 0, 0])
        np.testing.assert_array_equal(recall_at_k(recs, truth, k), [0, 0, 0])
        np.testing.assert_array_equal(precision_at_k(recs, truth, k), [0, 0, 0])
        np.testing.assert_array_equal(hit_rate_at_k(recs, truth, k), [0, 0, 0])
        np.testing.assert_array_equal(map_at_k(recs, truth, k), [0, 0, 0])
    np.testing.assert_array_equal(mrr(recs, truth), [0, 0, 0])


def test_padding_then_hit_keeps_rank() -> None:
    # recs [-1, 1]: padding in the middle keeps column positions; item 1 is rank 2.
    truth = make_truth([{1: 1}], n_items=3)
    recs = np.array([[-1, 1]])
    np.testing.assert_allclose(mrr(recs, truth), [1 / 2])
    # DCG = 1/log2(3); IDCG = 1/log2(2) = 1
    np.testing.assert_allclose(ndcg_at_k(recs, truth, 2), [1 / LOG2_3])


def test_empty_recs_shape_zero_columns() -> None:
    truth = make_truth([{1: 1}, {}], n_items=3)
    recs = np.empty((2, 0), dtype=np.int64)
    np.testing.assert_array_equal(ndcg_at_k(recs, truth, 5), [0.0, np.nan])
    np.testing.assert_array_equal(mrr(recs, truth), [0.0, 0.0])
    assert catalogue_coverage(recs, 3, 5) == 0.0


# ------------------------------------------------- users with no relevant items
def test_users_without_relevant_items_are_nan_and_excluded() -> None:
    # user 0: item 4 relevant and ranked first; user 1: nothing relevant at all.
    truth = make_truth([{4: 1}, {}], n_items=5)
    recs = np.array([[4, 0, 1], [4, 0, 1]])
    np.testing.assert_array_equal(ndcg_at_k(recs, truth, 10), [1.0, np.nan])
    np.testing.assert_array_equal(recall_at_k(recs, truth, 10), [1.0, np.nan])
    np.testing.assert_array_equal(map_at_k(recs, truth, 10), [1.0, np.nan])
    # precision / hit rate / mrr are defined (0) for user 1 ...
    np.testing.assert_array_equal(precision_at_k(recs, truth, 10), [0.1, 0.0])
    np.testing.assert_array_equal(hit_rate_at_k(recs, truth, 10), [1.0, 0.0])
    np.testing.assert_array_equal(mrr(recs, truth), [1.0, 0.0])
    # ... but metric_table averages only over user 0.
    table = metric_table(recs, truth)
    assert table["n_users_evaluated"] == 1
    assert table["ndcg_at_10"] == pytest.approx(1.0)
    assert table["precision_at_10"] == pytest.approx(0.1)  # 1 hit / 10, user 0 only
    assert table["hit_rate_at_10"] == pytest.approx(1.0)
    assert table["mrr"] == pytest.approx(1.0)


def test_min_grade_changes_evaluated_users() -> None:
    # user 0 has a purchase (3) at rank 2; user 1 only viewed (grade 1) -> excluded at min_grade=2
    truth = make_truth([{0: 3}, {1: 1}], n_items=3)
    recs = np.array([[2, 0, 1], [1, 0, 2]])
    table = metric_table(recs, truth, min_grade=2)
    assert table["n_users_evaluated"] == 1
    assert table["mrr"] == pytest.approx(0.5)  # user 0 only: 1/2
    assert metric_table(recs, truth)["n_users_evaluated"] == 2


def test_no_user_evaluated_gives_nan_without_warning() -> None:
    truth = make_truth([{}, {}], n_items=3)
    recs = np.array([[0, 1], [1, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Mean of empty slice" would fail the test
        table = metric_table(recs, truth)
    assert table["n_users_evaluated"] == 0
    assert math.isnan(table["ndcg_at_10"])
    assert table["coverage_at_10"] == pytest.approx(1.0)  # items {0, 1, 2} of 3


# --------------------------------------------------------------------- perfect ranking
def test_perfect_ranking_gives_ndcg_one() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 50, 30
    rows, recs = [], np.full((n_users, n_items), -1)
    for u in range(n_users):
        items = rng.choice(n_items, size=rng.integers(1, 15), replace=False)
        grades = rng.integers(1, 4, size=items.size)
        rows.append(dict(zip(items.tolist(), grades.tolist(), strict=True)))
        ranked = items[np.argsort(-grades, kind="stable")]  # best grade first
        recs[u, : ranked.size] = ranked
    truth = make_truth(rows, n_items)
    for k in (1, 3, 10, 30):
        np.testing.assert_allclose(ndcg_at_k(recs, truth, k), 1.0)
        np.testing.assert_allclose(ndcg_at_k(recs, truth, k, gains="linear"), 1.0)
    np.testing.assert_allclose(recall_at_k(recs, truth, n_items), 1.0)
    np.testing.assert_allclose(map_at_k(recs, truth, n_items), 1.0)
    np.testing.assert_allclose(mrr(recs, truth), 1.0)


# ------------------------------------------------------------------------ duplicates
def test_duplicates_are_not_expected_but_counted_once() -> None:
    # Documented contract: recs should not contain repeats. If they do, later copies are
    # treated as padding: recs [2, 2, 5] behaves like [2, -1, 5].
    truth = make_truth([{2: 1, 5: 1}], n_items=6)
    dup = np.array([[2, 2, 5]])
    padded = np.array([[2, -1, 5]])
    np.testing.assert_allclose(recall_at_k(dup, truth, 3), [1.0])  # 2 / 2, not 3 / 2
    np.testing.assert_allclose(precision_at_k(dup, truth, 3), [2 / 3])
    for fn in (ndcg_at_k, recall_at_k, precision_at_k, map_at_k):
        np.testing.assert_allclose(fn(dup, truth, 3), fn(padded, truth, 3))
    assert ndcg_at_k(dup, truth, 3)[0] <= 1.0
    assert catalogue_coverage(dup, 6, 3) == pytest.approx(2 / 6)
    # the caller's array is not modified
    np.testing.assert_array_equal(dup, [[2, 2, 5]])


# ------------------------------------------------------------------- beyond accuracy
def test_catalogue_coverage_hand_computed() -> None:
    recs = np.array([[0, 1, -1], [1, 2, 3]])
    assert catalogue_coverage(recs, 10, 2) == pytest.approx(3 / 10)  # {0, 1, 2}
    assert catalogue_coverage(recs, 10, 3) == pytest.approx(4 / 10)  # {0, 1, 2, 3}
    with pytest.raises(ValueError):
        catalogue_coverage(recs, 3, 3)  # item 3 outside a 3-item catalogue


def test_novelty_hand_computed() -> None:
    # 4 users; popularity [4, 2, 1, 0] -> p = [4/4, 2/4, 1/4, clip(0/4, 1/4)]
    #                                      -log2(p) = [0, 1, 2, 2]
    pop = np.array([4, 2, 1, 0])
    recs = np.array([[0, 1], [2, 3], [-1, -1], [1, -1]])
    # means: (0+1)/2 = 0.5, (2+2)/2 = 2, empty -> NaN, 1/1 = 1
    np.testing.assert_allclose(novelty_at_k(recs, pop, 2), [0.5, 2.0, np.nan, 1.0])
    # top 1 only: [0, 2, NaN, 1]
    np.testing.assert_allclose(novelty_at_k(recs, pop, 1), [0.0, 2.0, np.nan, 1.0])
    # 8 training users: p = [1/2, 1/4, 1/8, clip(0, 1/8)] -> [1, 2, 3, 3]
    np.testing.assert_allclose(novelty_at_k(recs, pop, 2, n_users=8), [1.5, 3.0, np.nan, 2.0])
    # popularity above the user count is clipped to p = 1 -> 0 bits
    np.testing.assert_allclose(novelty_at_k(np.array([[0]]), np.array([5]), 1), [0.0])


def test_intra_list_diversity_hand_computed() -> None:
    cat = np.array([0, 0, 1, -1, -1, 2])
    recs = np.array(
        [
            [0, 1, 2, 3],  # cats [0, 0, 1, -1]: 6 pairs, 1 same (0,0)  -> 5/6
            [3, 4, 5, -1],  # cats [-1, -1, 2]: 3 pairs, 1 same (-1,-1) -> 2/3
            [0, -1, -1, -1],  # one item -> NaN
            [0, 2, -1, -1],  # cats [0, 1]: 1 pair, different -> 1
            [2, 0, 5, 1],  # cats [1, 0, 2, 0]: 6 pairs, 1 same -> 5/6
        ]
    )
    np.testing.assert_allclose(
        intra_list_diversity_at_k(recs, cat, 4), [5 / 6, 2 / 3, np.nan, 1.0, 5 / 6]
    )
    # k = 2: [0, 0] -> 0; [-1, -1] -> 0; NaN; [0, 1] -> 1; [1, 0] -> 1
    np.testing.assert_allclose(
        intra_list_diversity_at_k(recs, cat, 2), [0.0, 0.0, np.nan, 1.0, 1.0]
    )


# ------------------------------------------------------------------------- summaries
CANONICAL = {
    "ndcg_at_10",
    "ndcg_at_20",
    "recall_at_10",
    "recall_at_20",
    "recall_at_50",
    "map_at_10",
    "precision_at_10",
    "hit_rate_at_10",
    "mrr",
    "coverage_at_10",
    "novelty_at_10",
    "diversity_at_10",
    "n_users_evaluated",
}


def test_metric_table_names_prefix_and_values() -> None:
    recs, truth, _ = random_case(seed=3, n_users=120)
    n_items = truth.shape[1]
    pop = np.arange(n_items)
    cat = np.arange(n_items) % 4
    table = metric_table(
        recs, truth, item_popularity=pop, item_category=cat, prefix="baseline.popularity."
    )
    assert set(table) == {f"baseline.popularity.{name}" for name in CANONICAL}
    plain = metric_table(recs, truth, item_popularity=pop, item_category=cat)
    assert set(plain) == CANONICAL
    evaluated = np.asarray((truth >= 1).sum(axis=1)).ravel() > 0
    assert plain["n_users_evaluated"] == int(evaluated.sum())
    assert plain["ndcg_at_10"] == pytest.approx(np.nanmean(ndcg_at_k(recs, truth, 10)[evaluated]))
    assert plain["recall_at_20"] == pytest.approx(
        np.nanmean(recall_at_k(recs, truth, 20)[evaluated])
    )
    assert plain["precision_at_10"] == pytest.approx(
        precision_at_k(recs, truth, 10)[evaluated].mean()
    )
    assert plain["mrr"] == pytest.approx(mrr(recs, truth)[evaluated].mean())
    assert plain["coverage_at_10"] == pytest.approx(catalogue_coverage(recs, n_items, 10))
    assert plain["novelty_at_10"] == pytest.approx(np.nanmean(novelty_at_k(recs, pop, 10)))
    assert plain["diversity_at_10"] == pytest.approx(
        np.nanmean(intra_list_diversity_at_k(recs, cat, 10))
    )
    # optional metrics are omitted without their inputs
    bare = metric_table(recs, truth, ks_ndcg=(5,), ks_recall=(), prefix="x.")
    assert "x.novelty_at_10" not in bare and "x.diversity_at_10" not in bare
    assert "x.ndcg_at_5" in bare and not any(key.startswith("x.recall") for key in bare)


def test_metric_at_k_curve_matches_per_user_means() -> None:
    recs, truth, _ = random_case(seed=4, n_users=80)
    evaluated = np.asarray((truth >= 1).sum(axis=1)).ravel() > 0
    curve = metric_at_k_curve(recs, truth, metric="ndcg", ks=(1, 5, 20))
    assert list(curve) == [1, 5, 20]
    for k, value in curve.items():
        assert value == pytest.approx(np.nanmean(ndcg_at_k(recs, truth, k)[evaluated]))
    recall_curve = metric_at_k_curve(recs, truth, metric="recall")
    values = [recall_curve[k] for k in (1, 2, 5, 10, 20, 50)]
    assert values == sorted(values)  # recall@k is non-decreasing in k
    with pytest.raises(ValueError):
        metric_at_k_curve(recs, truth, metric="auc")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- input checks
def test_input_validation() -> None:
    with pytest.raises(ValueError):
        ndcg_at_k(ONE_RECS, ONE_TRUTH, 0)
    with pytest.raises(ValueError):
        ndcg_at_k(np.array([5, 7, 2]), ONE_TRUTH, 3)  # 1-D recs
    with pytest.raises(ValueError):
        ndcg_at_k(np.array([[5, 7, 2], [1, 2, 3]]), ONE_TRUTH, 3)  # 2 users vs 1 truth row
    with pytest.raises(ValueError):
        recall_at_k(np.array([[8]]), ONE_TRUTH, 1)  # item 8 >= n_items
    with pytest.raises(ValueError):
        recall_at_k(ONE_RECS, ONE_TRUTH, 3, min_grade=0)  # absent items would be "relevant"
    with pytest.raises(ValueError):
        recall_at_k(ONE_RECS.astype(float), ONE_TRUTH, 3)
    with pytest.raises(ValueError):
        recall_at_k(ONE_RECS, ONE_TRUTH.toarray(), 3)  # dense truth


def test_sparse_array_and_explicit_zeros_accepted() -> None:
    # csr_array input; an explicitly stored 0 grade is irrelevant.
    truth = sp.csr_array(
        (np.array([3.0, 1.0, 0.0]), (np.array([0, 0, 0]), np.array([2, 5, 7]))), shape=(1, 8)
    )
    np.testing.assert_allclose(ndcg_at_k(ONE_RECS, truth, 3), ndcg_at_k(ONE_RECS, ONE_TRUTH, 3))
    np.testing.assert_allclose(recall_at_k(ONE_RECS, truth, 3), [1.0])  # 7 is not relevant


# ------------------------------------------------ pure-Python reference, random data
def random_case(
    seed: int, n_users: int = 300
) -> tuple[np.ndarray, sp.csr_matrix, list[dict[int, int]]]:
    """Padded recs without repeats, graded truth (some users empty) and its source dicts."""
    rng = np.random.default_rng(seed)
    n_items, k_max = 60, 30
    rows = []
    for _ in range(n_users):
        n_rel = 0 if rng.random() < 0.1 else int(rng.integers(1, 12))
        items = rng.choice(n_items, size=n_rel, replace=False)
        rows.append({int(i): int(rng.integers(1, 4)) for i in items})
    recs = np.full((n_users, k_max), -1, dtype=np.int64)
    for u in range(n_users):
        length = int(rng.integers(0, k_max + 1))
        recs[u, :length] = rng.choice(n_items, size=length, replace=False)
    return recs, make_truth(rows, n_items), rows


def ref_ndcg(rec: list[int], grades: dict[int, float], k: int) -> float:
    """Textbook NDCG@k, one user."""
    dcg = 0.0
    for rank, item in enumerate(rec[:k], start=1):
        if item >= 0:
            dcg += (2 ** grades.get(item, 0) - 1) / math.log2(rank + 1)
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else math.nan


def ref_recall(rec: list[int], relevant: set[int], k: int) -> float:
    """Textbook recall@k, one user."""
    if not relevant:
        return math.nan
    return len([i for i in rec[:k] if i in relevant]) / len(relevant)


def ref_ap(rec: list[int], relevant: set[int], k: int) -> float:
    """Textbook AP@k normalised by min(k, |relevant|), one user."""
    if not relevant:
        return math.nan
    hits, total = 0, 0.0
    for rank, item in enumerate(rec[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def ref_rr(rec: list[int], relevant: set[int]) -> float:
    """Reciprocal rank of the first relevant item, one user."""
    for rank, item in enumerate(rec, start=1):
        if item in relevant:
            return 1 / rank
    return 0.0


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("min_grade", [1, 2])
def test_matches_pure_python_reference(seed: int, min_grade: int) -> None:
    recs, truth, grades = random_case(seed)  # grades: the {item: grade} dicts behind truth
    recs_list = recs.tolist()
    relevant = [{i for i, g in row.items() if g >= min_grade} for row in grades]
    for k in (1, 5, 10, 30, 40):
        np.testing.assert_allclose(
            ndcg_at_k(recs, truth, k),
            [ref_ndcg(r, g, k) for r, g in zip(recs_list, grades, strict=True)],
        )
        np.testing.assert_allclose(
            recall_at_k(recs, truth, k, min_grade=min_grade),
            [ref_recall(r, s, k) for r, s in zip(recs_list, relevant, strict=True)],
        )
        np.testing.assert_allclose(
            map_at_k(recs, truth, k, min_grade=min_grade),
            [ref_ap(r, s, k) for r, s in zip(recs_list, relevant, strict=True)],
        )
        np.testing.assert_allclose(
            precision_at_k(recs, truth, k, min_grade=min_grade),
            [
                len([i for i in r[:k] if i in s]) / k
                for r, s in zip(recs_list, relevant, strict=True)
            ],
        )
    np.testing.assert_allclose(
        mrr(recs, truth, min_grade=min_grade),
        [ref_rr(r, s) for r, s in zip(recs_list, relevant, strict=True)],
    )
