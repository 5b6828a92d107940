"""Ranker feature matrix for candidate (user, item) pairs, gathered from snapshot arrays.

Columns: user features, item features, user-item features (NaN when the pair never met),
the user's affinity to the item's category (with the drift signal), MF dot and cosine, and
each candidate source's rank and score. Names are stable; the ranker stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recpipe.tasks.candidates.candidate_sets import SOURCES, CandidateSet
from recpipe.tasks.features.snapshot_arrays import (
    AFFINITY_FEATURES,
    ITEM_FEATURES,
    USER_FEATURES,
    USER_ITEM_FEATURES,
    SnapshotArrays,
)

FEATURE_NAMES: list[str] = (
    [f"user.{f}" for f in USER_FEATURES]
    + [f"item.{f}" for f in ITEM_FEATURES]
    + [f"ui.{f}" for f in USER_ITEM_FEATURES]
    + [f"cat.{f}" for f in AFFINITY_FEATURES]
    + ["mf.dot", "mf.cosine", "mf.user_norm", "mf.item_norm"]
    + [f"rank.{s}" for s in SOURCES]
    + ["score.covis", "score.category", "n_sources", "cat.interest_now"]
)


@dataclass
class RankerInput:
    """Feature matrix (float32) row-aligned with a candidate set."""

    X: np.ndarray
    names: list[str]


def ranker_features(
    snap: SnapshotArrays,
    cands: CandidateSet,
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    drift_boost: float = 1.0,
) -> RankerInput:
    """Gather the FEATURE_NAMES columns for every candidate row.

    `user_vecs` is aligned to `cands.users`, `item_vecs` to snapshot items. `cat.interest_now`
    blends long-term and short-term category share, with the short-term share weighted by
    `drift_boost` (>1 follows recent interest harder).
    """
    n = len(cands)
    u = cands.users[cands.row]
    i = cands.item
    X = np.empty(
        (n, len(FEATURE_NAMES)), dtype=np.float32
    )  # filled block by block, no concatenation
    col = 0

    def put(block: np.ndarray) -> None:
        nonlocal col
        width = 1 if block.ndim == 1 else block.shape[1]
        X[:, col : col + width] = block.reshape(n, width)
        col += width

    put(snap.user_feats[u])
    put(snap.item_feats[i])
    pos, found = snap.user_item_lookup(u, i)
    ui = X[:, col : col + len(USER_ITEM_FEATURES)]
    ui[:] = np.nan
    ui[found] = snap.ui_feats[pos[found]]
    col += len(USER_ITEM_FEATURES)
    cat = snap.item_category[i]
    apos, afound = snap.affinity_lookup(u, cat)
    aff = X[:, col : col + len(AFFINITY_FEATURES)]
    aff[:] = 0.0
    aff[afound] = snap.affinity_feats[apos[afound]]  # NULL shares were loaded as 0
    col += len(AFFINITY_FEATURES)
    dot = np.empty(n, dtype=np.float32)
    for s in range(0, n, 65536):  # chunks keep the gathered factor blocks in cache
        e = min(s + 65536, n)
        dot[s:e] = np.einsum("ij,ij->i", user_vecs[cands.row[s:e]], item_vecs[i[s:e]])
    un = np.sqrt(np.einsum("ij,ij->i", user_vecs, user_vecs))[cands.row]
    inn = np.sqrt(np.einsum("ij,ij->i", item_vecs, item_vecs))[i]
    for block in (dot, dot / np.maximum(un * inn, 1e-9), un, inn):
        put(block)
    n_sources = np.zeros(n, dtype=np.float32)
    for s in SOURCES:
        put(cands.ranks[s])
        n_sources += ~np.isnan(cands.ranks[s])
    long_share = aff[:, AFFINITY_FEATURES.index("long_share")]
    short_share = aff[:, AFFINITY_FEATURES.index("short_share")]
    interest_now = (long_share + drift_boost * short_share) / (1.0 + drift_boost)
    for block in (cands.scores["covis"], cands.scores["category"], n_sources, interest_now):
        put(block)
    assert col == X.shape[1] == len(FEATURE_NAMES)
    return RankerInput(X=X, names=list(FEATURE_NAMES))
