"""Offline top-K ranking metrics for recommender evaluation (vectorised numpy/scipy).

Conventions shared by every function
------------------------------------
``recs``
    ``np.ndarray`` of shape ``(n_users, K_max)``, integer item indices in rank order
    (column 0 = rank 1). Users with fewer than ``K_max`` items are padded with ``-1``;
    any negative entry is treated as padding and never counts as a hit, never as a
    recommended item. Padding is expected at the end of a row; if it occurs in the
    middle, later items keep their column position as their rank.
    Duplicate items within a row are *not expected* (a well-formed recommender never
    repeats an item). If they do occur, only the first occurrence is kept and later
    repeats are treated as padding, so metrics stay within their usual bounds.
``truth``
    ``scipy.sparse`` matrix/array of shape ``(n_users, n_items)``; row ``u`` holds the
    graded relevance of items for user ``u`` in the evaluation window (e.g. 1 view,
    2 cart, 3 purchase). Absent/0 = irrelevant. Grades are assumed non-negative
    (negative values are clipped to 0 for NDCG gains). For binary metrics an item is
    relevant when ``grade >= min_grade`` (``min_grade`` must be > 0). Duplicate stored
    entries are summed by scipy's canonicalisation.
``k``
    Cut-off; positive int. If ``k > K_max`` the whole list is used, but precision is
    still divided by ``k``.

Per-user functions return ``float64`` arrays of shape ``(n_users,)``. Metrics that are
undefined for a user with no relevant items (NDCG, recall, MAP) are ``NaN`` for that
user; precision, hit rate and MRR are well defined (0) for such users, so callers who
average over a segment should exclude them explicitly (``metric_table`` does:
accuracy metrics are averaged only over users with at least one relevant item).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = [
    "catalogue_coverage",
    "hit_rate_at_k",
    "intra_list_diversity_at_k",
    "map_at_k",
    "metric_at_k_curve",
    "metric_table",
    "mrr",
    "ndcg_at_k",
    "novelty_at_k",
    "precision_at_k",
    "recall_at_k",
]

Gains = Literal["exponential", "linear"]
CurveMetric = Literal["ndcg", "recall", "precision", "hit_rate", "map"]


# --------------------------------------------------------------------------- helpers


def _check_k(k: int) -> int:
    """Validate a cut-off and return it as a Python int."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _clean_recs(recs: np.ndarray, n_items: int | None = None) -> np.ndarray:
    """Return an int64 copy of ``recs`` with padding normalised to -1 and repeats masked.

    Assumes ``recs`` is 2-D integer-valued. Any negative entry becomes -1; the second and
    later occurrences of an item within a row also become -1 (first occurrence kept).
    Raises ``ValueError`` for wrong shape/dtype or items ``>= n_items``.
    """
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise ValueError(f"recs must be 2-D (n_users, K_max), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"recs must have an integer dtype, got {arr.dtype}")
    out = arr.astype(np.int64, copy=True)
    out[out < 0] = -1
    if n_items is not None and out.size and out.max() >= n_items:
        raise ValueError(f"recs contains item index {out.max()} >= n_items={n_items}")
    if out.shape[1] > 1 and out.size:
        srt = np.sort(out, axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            # Rare path. A stable argsort keeps the earliest column first among equal
            # items, so every "equal to the previous sorted value" entry is a repeat.
            order = np.argsort(out, axis=1, kind="stable")
            srt = np.take_along_axis(out, order, axis=1)
            dup_sorted = np.zeros_like(srt, dtype=bool)
            dup_sorted[:, 1:] = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
            dup = np.zeros_like(dup_sorted)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            out[dup] = -1
    return out


def _as_csr(truth: sp.spmatrix | sp.sparray, n_users: int) -> sp.csr_array:
    """Return ``truth`` as a canonical float64 CSR matrix (sorted, no duplicates).

    Assumes one row per user, aligned with ``recs``; raises ``ValueError`` otherwise.
    """
    if not sp.issparse(truth):
        raise ValueError("truth must be a scipy.sparse matrix/array of shape (n_users, n_items)")
    csr = sp.csr_array(truth, dtype=np.float64, copy=True)
    if csr.shape[0] != n_users:
        raise ValueError(f"truth has {csr.shape[0]} rows but recs has {n_users} users")
    csr.sum_duplicates()  # also sorts indices
    return csr


def _row_ids(csr: sp.csr_array) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))


def _lookup_grades(recs_k: np.ndarray, csr: sp.csr_array) -> np.ndarray:
    """Grade of each recommended item, shape of ``recs_k``; 0 for padding/absent items.

    Uses scipy's point-wise fancy indexing ``csr[rows, cols]`` (a per-row binary search
    in C++). Padding is replaced by column 0 before the lookup (scipy would wrap -1 to
    the last item) and masked out afterwards.
    """
    n_users, n_items = csr.shape
    grades = np.zeros(recs_k.shape, dtype=np.float64)
    if csr.nnz == 0 or recs_k.size == 0:
        return grades
    valid = recs_k >= 0
    if valid.any() and recs_k.max() >= n_items:
        raise ValueError(f"recs contains item index {recs_k.max()} >= n_items={n_items}")
    rows = np.repeat(np.arange(n_users, dtype=np.int64), recs_k.shape[1])
    cols = np.where(valid, recs_k, 0).ravel()
    values = np.asarray(csr[rows, cols], dtype=np.float64).reshape(recs_k.shape)
    np.copyto(grades, values, where=valid)
    return grades


def _check_min_grade(min_grade: float) -> float:
    """Validate ``min_grade``: it must be > 0 so absent (grade-0) items are never relevant."""
    if not np.isfinite(min_grade) or min_grade <= 0:
        raise ValueError(f"min_grade must be a positive number, got {min_grade!r}")
    return float(min_grade)


def _n_relevant(csr: sp.csr_array, min_grade: float) -> np.ndarray:
    """Number of items with ``grade >= min_grade`` per user (float64, shape (n_users,))."""
    min_grade = _check_min_grade(min_grade)
    mask = csr.data >= min_grade
    return np.bincount(_row_ids(csr)[mask], minlength=csr.shape[0]).astype(np.float64)


def _gain(grades: np.ndarray, gains: Gains) -> np.ndarray:
    """Gain of each grade: ``2**g - 1`` (exponential) or ``g`` (linear); grades clipped at 0."""
    g = np.clip(grades, 0.0, None)
    if gains == "exponential":
        return np.exp2(g) - 1.0
    if gains == "linear":
        return g
    raise ValueError(f"gains must be 'exponential' or 'linear', got {gains!r}")


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _safe_mean(values: np.ndarray) -> float:
    """nanmean that returns NaN (without a RuntimeWarning) when nothing is finite."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


@dataclass(frozen=True)
class _Prepared:
    """Cleaned inputs shared by the accuracy metrics (computed once in ``metric_table``).

    ``grades[u, r]`` is the truth grade of ``recs[u, r]`` (0 for padding/absent items).
    """

    recs: np.ndarray
    truth: sp.csr_array
    grades: np.ndarray


def _prepare(recs: np.ndarray, truth: sp.spmatrix | sp.sparray) -> _Prepared:
    """Validate and canonicalise ``recs`` and ``truth`` together."""
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise ValueError(f"recs must be 2-D (n_users, K_max), got shape {arr.shape}")
    csr = _as_csr(truth, arr.shape[0])
    clean = _clean_recs(arr, csr.shape[1])
    return _Prepared(recs=clean, truth=csr, grades=_lookup_grades(clean, csr))


# ------------------------------------------------------------- accuracy (internal)


def _hits(p: _Prepared, k: int | None, min_grade: float) -> np.ndarray:
    """Boolean (n_users, min(k, K_max)) matrix: item at rank i is relevant."""
    cols = slice(None) if k is None else slice(0, k)
    min_grade = _check_min_grade(min_grade)
    return (p.grades[:, cols] >= min_grade) & (p.recs[:, cols] >= 0)


def _ndcg(p: _Prepared, k: int, gains: Gains) -> np.ndarray:
    """Per-user NDCG@k on prepared inputs (see ``ndcg_at_k``)."""
    grades_k = p.grades[:, :k]
    disc = _discounts(k)
    dcg = (_gain(grades_k, gains) * disc[: grades_k.shape[1]]).sum(axis=1)

    # IDCG: sort each user's truth grades descending, keep the first k, discount, sum.
    csr = p.truth
    rows = _row_ids(csr)
    gain = _gain(csr.data, gains)
    order = np.lexsort((-gain, rows))  # by row, then gain descending
    within = np.arange(csr.nnz, dtype=np.int64) - csr.indptr[rows[order]]
    keep = within < k
    idcg = np.bincount(
        rows[order][keep],
        weights=gain[order][keep] * disc[within[keep]],
        minlength=csr.shape[0],
    )
    out = np.full(csr.shape[0], np.nan)
    pos = idcg > 0
    out[pos] = dcg[pos] / idcg[pos]
    return out


def _recall(p: _Prepared, k: int, min_grade: float) -> np.ndarray:
    """Per-user recall@k on prepared inputs (see ``recall_at_k``)."""
    n_rel = _n_relevant(p.truth, min_grade)
    hits = _hits(p, k, min_grade).sum(axis=1)
    out = np.full(n_rel.shape, np.nan)
    pos = n_rel > 0
    out[pos] = hits[pos] / n_rel[pos]
    return out


def _precision(p: _Prepared, k: int, min_grade: float) -> np.ndarray:
    """Per-user precision@k on prepared inputs (see ``precision_at_k``)."""
    return _hits(p, k, min_grade).sum(axis=1) / float(k)


def _hit_rate(p: _Prepared, k: int, min_grade: float) -> np.ndarray:
    """Per-user hit rate@k on prepared inputs (see ``hit_rate_at_k``)."""
    return _hits(p, k, min_grade).any(axis=1).astype(np.float64)


def _map(p: _Prepared, k: int, min_grade: float) -> np.ndarray:
    """Per-user AP@k on prepared inputs (see ``map_at_k``)."""
    hits = _hits(p, k, min_grade).astype(np.float64)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    prec_at_i = np.cumsum(hits, axis=1) / ranks
    ap_sum = (prec_at_i * hits).sum(axis=1)
    denom = np.minimum(float(k), _n_relevant(p.truth, min_grade))
    out = np.full(denom.shape, np.nan)
    pos = denom > 0
    out[pos] = ap_sum[pos] / denom[pos]
    return out


def _mrr(p: _Prepared, k: int | None, min_grade: float) -> np.ndarray:
    """Per-user reciprocal rank on prepared inputs (see ``mrr``)."""
    hits = _hits(p, k, min_grade)
    out = np.zeros(hits.shape[0], dtype=np.float64)
    if hits.shape[1] == 0:
        return out
    any_hit = hits.any(axis=1)
    first = hits.argmax(axis=1)
    out[any_hit] = 1.0 / (first[any_hit] + 1.0)
    return out


# ------------------------------------------------------------ accuracy (public API)


def ndcg_at_k(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    k: int,
    gains: Gains = "exponential",
) -> np.ndarray:
    """Per-user NDCG@k with graded relevance.

    DCG = sum_{rank r <= k} gain(grade_r) / log2(r + 1), gain = 2**grade - 1
    ("exponential") or grade ("linear"). IDCG is the DCG of the user's best possible
    top-k built from all their truth grades. Users whose IDCG is 0 (no positive grade)
    get NaN. Padding contributes 0.
    """
    k = _check_k(k)
    return _ndcg(_prepare(recs, truth), k, gains)


def recall_at_k(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    k: int,
    min_grade: float = 1,
) -> np.ndarray:
    """Per-user recall@k: relevant items in the top k / number of relevant items.

    Relevant means ``grade >= min_grade``. NaN for users with no relevant items.
    """
    k = _check_k(k)
    return _recall(_prepare(recs, truth), k, min_grade)


def precision_at_k(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    k: int,
    min_grade: float = 1,
) -> np.ndarray:
    """Per-user precision@k: relevant items in the top k / k.

    Always divides by ``k`` (short or padded lists are penalised). 0 for users with no
    relevant items.
    """
    k = _check_k(k)
    return _precision(_prepare(recs, truth), k, min_grade)


def hit_rate_at_k(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    k: int,
    min_grade: float = 1,
) -> np.ndarray:
    """Per-user hit rate@k: 1.0 if any relevant item is in the top k, else 0.0."""
    k = _check_k(k)
    return _hit_rate(_prepare(recs, truth), k, min_grade)


def map_at_k(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    k: int,
    min_grade: float = 1,
) -> np.ndarray:
    """Per-user average precision@k.

    AP@k = sum_{r <= k} P@r * rel_r / min(k, n_relevant), rel_r in {0, 1}.
    NaN for users with no relevant items. Averaging the result gives MAP@k.
    """
    k = _check_k(k)
    return _map(_prepare(recs, truth), k, min_grade)


def mrr(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    min_grade: float = 1,
    k: int | None = None,
) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item (0 if none is recommended).

    Looks at the full list when ``k`` is None, else only the top k. 0 for users with no
    relevant items. Averaging the result gives MRR.
    """
    if k is not None:
        k = _check_k(k)
    return _mrr(_prepare(recs, truth), k, min_grade)


# -------------------------------------------------------------- beyond accuracy


def _check_item_range(clean: np.ndarray, n_items: int, what: str) -> None:
    """Raise if a cleaned recs array refers to an item outside ``what`` (length n_items)."""
    if clean.size and clean.max() >= n_items:
        raise ValueError(f"recs contains item index {clean.max()} >= len({what})={n_items}")


def _coverage(clean: np.ndarray, n_items: int, k: int) -> float:
    """Catalogue coverage@k on cleaned recs (see ``catalogue_coverage``)."""
    top = clean[:, :k]
    _check_item_range(top, n_items, "catalogue")
    seen = np.zeros(n_items, dtype=bool)
    seen[top[top >= 0]] = True
    return float(seen.sum() / n_items)


def _novelty(clean: np.ndarray, pop: np.ndarray, k: int, n_users: int | None) -> np.ndarray:
    """Per-user novelty@k on cleaned recs (see ``novelty_at_k``)."""
    top = clean[:, :k]
    _check_item_range(top, pop.size, "item_popularity")
    n = float(top.shape[0] if n_users is None else n_users)
    out = np.full(top.shape[0], np.nan)
    if n <= 0:
        return out
    info = -np.log2(np.clip(pop / n, 1.0 / n, 1.0))
    valid = top >= 0
    total = np.where(valid, info[np.where(valid, top, 0)], 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    pos = count > 0
    out[pos] = total[pos] / count[pos]
    return out


def _diversity(clean: np.ndarray, cat: np.ndarray, k: int) -> np.ndarray:
    """Per-user intra-list diversity@k on cleaned recs (see ``intra_list_diversity_at_k``)."""
    top = clean[:, :k]
    _check_item_range(top, cat.size, "item_category")
    valid = top >= 0
    n = valid.sum(axis=1).astype(np.float64)
    out = np.full(top.shape[0], np.nan)
    if top.size == 0:
        return out
    sentinel = np.iinfo(np.int64).max  # padding sorts last and is excluded below
    codes = np.where(valid, cat.astype(np.int64)[np.where(valid, top, 0)], sentinel)
    codes.sort(axis=1)
    cols = np.arange(codes.shape[1], dtype=np.int64)
    new_run = np.ones(codes.shape, dtype=bool)
    new_run[:, 1:] = codes[:, 1:] != codes[:, :-1]
    run_start = np.maximum.accumulate(np.where(new_run, cols, 0), axis=1)
    equal_before = cols - run_start  # earlier items in the row with the same code
    same_pairs = np.where(codes != sentinel, equal_before, 0).sum(axis=1)
    pairs = n * (n - 1) / 2.0
    pos = pairs > 0
    out[pos] = 1.0 - same_pairs[pos] / pairs[pos]
    return out


def _as_1d(values: np.ndarray, name: str, dtype: type | None = None) -> np.ndarray:
    """``values`` as a 1-D array (one entry per item); raises ``ValueError`` otherwise."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_items,), got shape {arr.shape}")
    return arr


def catalogue_coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue (``n_items`` items) appearing in at least one user's top k.

    Padding is ignored. Returns a float in [0, 1].
    """
    k = _check_k(k)
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    return _coverage(_clean_recs(recs), int(n_items), k)


def novelty_at_k(
    recs: np.ndarray,
    item_popularity: np.ndarray,
    k: int,
    n_users: int | None = None,
) -> np.ndarray:
    """Per-user mean self-information of the items in the top k.

    novelty_u = mean_{i in top-k(u), i not padding} -log2(p_i), with
    p_i = clip(item_popularity[i] / n_users, 1 / n_users, 1), where
    ``item_popularity[i]`` = number of distinct users who interacted with item i in
    training and ``n_users`` = number of training users (defaults to ``recs.shape[0]``;
    pass the training user count when it differs). Unseen items therefore get the
    maximum, log2(n_users). NaN for users with an empty list. Higher = less popular.
    """
    k = _check_k(k)
    pop = _as_1d(item_popularity, "item_popularity", np.float64)
    return _novelty(_clean_recs(recs), pop, k, n_users)


def intra_list_diversity_at_k(
    recs: np.ndarray,
    item_category: np.ndarray,
    k: int,
) -> np.ndarray:
    """Per-user share of item pairs in the top k whose categories differ.

    diversity_u = 1 - (#pairs with the same category) / (n choose 2), n = non-padding
    items in the top k. ``item_category`` holds integer category codes per item; -1
    (unknown) is treated as one category of its own. NaN for lists with < 2 items.
    Computed by sorting each row's codes and counting equal-code runs (O(k log k)/user).
    """
    k = _check_k(k)
    return _diversity(_clean_recs(recs), _as_1d(item_category, "item_category"), k)


# -------------------------------------------------------------------- summaries


def metric_table(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    ks_ndcg: Sequence[int] = (10, 20),
    ks_recall: Sequence[int] = (10, 20, 50),
    ks_map: Sequence[int] = (10,),
    ks_precision: Sequence[int] = (10,),
    ks_hit_rate: Sequence[int] = (10,),
    ks_coverage: Sequence[int] = (10,),
    ks_novelty: Sequence[int] = (10,),
    ks_diversity: Sequence[int] = (10,),
    mrr_k: int | None = None,
    min_grade: float = 1,
    gains: Gains = "exponential",
    item_popularity: np.ndarray | None = None,
    n_users_popularity: int | None = None,
    item_category: np.ndarray | None = None,
    n_items: int | None = None,
    prefix: str = "",
) -> dict[str, float]:
    """Summary metrics under the project's canonical names, each prefixed with ``prefix``.

    Keys: ``ndcg_at_{k}``, ``recall_at_{k}``, ``map_at_{k}``, ``precision_at_{k}``,
    ``hit_rate_at_{k}``, ``mrr``, ``coverage_at_{k}``, ``n_users_evaluated``, plus
    ``novelty_at_{k}`` if ``item_popularity`` is given and ``diversity_at_{k}`` if
    ``item_category`` is given. Accuracy metrics are averaged (NaN-aware) over users
    with at least one item of ``grade >= min_grade`` (``n_users_evaluated`` of them);
    beyond-accuracy metrics over all users with a non-empty list. ``n_items`` for
    coverage defaults to ``truth.shape[1]``; ``n_users_popularity`` is passed to
    ``novelty_at_k`` as ``n_users``. Values are NaN when no user can be averaged.
    """
    p = _prepare(recs, truth)
    evaluated = _n_relevant(p.truth, min_grade) > 0
    out: dict[str, float] = {}

    def acc(values: np.ndarray) -> float:
        """Mean over evaluated users (at least one relevant item)."""
        return _safe_mean(values[evaluated])

    for k in map(_check_k, ks_ndcg):
        out[f"ndcg_at_{k}"] = acc(_ndcg(p, k, gains))
    for k in map(_check_k, ks_recall):
        out[f"recall_at_{k}"] = acc(_recall(p, k, min_grade))
    for k in map(_check_k, ks_map):
        out[f"map_at_{k}"] = acc(_map(p, k, min_grade))
    for k in map(_check_k, ks_precision):
        out[f"precision_at_{k}"] = acc(_precision(p, k, min_grade))
    for k in map(_check_k, ks_hit_rate):
        out[f"hit_rate_at_{k}"] = acc(_hit_rate(p, k, min_grade))
    out["mrr"] = acc(_mrr(p, None if mrr_k is None else _check_k(mrr_k), min_grade))

    catalogue = p.truth.shape[1] if n_items is None else int(n_items)
    for k in map(_check_k, ks_coverage):
        out[f"coverage_at_{k}"] = _coverage(p.recs, catalogue, k)
    if item_popularity is not None:
        pop = _as_1d(item_popularity, "item_popularity", np.float64)
        for k in map(_check_k, ks_novelty):
            out[f"novelty_at_{k}"] = _safe_mean(_novelty(p.recs, pop, k, n_users_popularity))
    if item_category is not None:
        cat = _as_1d(item_category, "item_category")
        for k in map(_check_k, ks_diversity):
            out[f"diversity_at_{k}"] = _safe_mean(_diversity(p.recs, cat, k))
    out["n_users_evaluated"] = int(evaluated.sum())
    return {f"{prefix}{name}": value for name, value in out.items()}


def metric_at_k_curve(
    recs: np.ndarray,
    truth: sp.spmatrix | sp.sparray,
    metric: CurveMetric = "ndcg",
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50),
    min_grade: float = 1,
    gains: Gains = "exponential",
) -> dict[int, float]:
    """Mean ``metric``@k for each k in ``ks`` (for plotting metric@K curves).

    ``metric`` is one of "ndcg", "recall", "precision", "hit_rate", "map". Averaged over
    users with at least one relevant item, exactly as in ``metric_table``.
    """
    p = _prepare(recs, truth)
    evaluated = _n_relevant(p.truth, min_grade) > 0
    funcs = {
        "ndcg": lambda k: _ndcg(p, k, gains),
        "recall": lambda k: _recall(p, k, min_grade),
        "precision": lambda k: _precision(p, k, min_grade),
        "hit_rate": lambda k: _hit_rate(p, k, min_grade),
        "map": lambda k: _map(p, k, min_grade),
    }
    if metric not in funcs:
        raise ValueError(f"metric must be one of {sorted(funcs)}, got {metric!r}")
    fn = funcs[metric]
    return {int(k): _safe_mean(fn(_check_k(k))[evaluated]) for k in ks}
