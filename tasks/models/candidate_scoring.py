"""Scored top-K lists for a batch of users: embeddings -> candidates -> features -> ranker.

Shared by offline evaluation and by the batch recommendation job, so what is measured is
what is shipped. User factors always come from folding the user's snapshot history into
the model's item factors, so users who arrived after the fit are covered too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipe.tasks.candidates.candidate_sets import (
    CandidateConfig,
    CandidateSet,
    ItemLists,
    candidate_set,
)
from recpipe.tasks.candidates.ranker_features import ranker_features
from recpipe.tasks.common.row_order import positions_in_rows, row_value_order
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.features.snapshot_arrays import SnapshotArrays
from recpipe.tasks.models.als_embeddings import ALSEmbeddings, aligned_item_factors


@dataclass
class EmbeddingView:
    """MF factors aligned to a snapshot: item vectors per snapshot item, a fold-in map for users."""

    emb: ALSEmbeddings
    item_vecs: np.ndarray  # (n_items of snapshot, factors)
    item_known: np.ndarray  # bool per snapshot item
    col_map: np.ndarray  # snapshot item -> model item position (-1 unknown)

    def user_vecs(
        self, snap: SnapshotArrays, users: np.ndarray, num_threads: int | None = None
    ) -> np.ndarray:
        """Fold the users' snapshot history into the model's item factors."""
        hist = snap.interactions[np.asarray(users, dtype=np.int64)].tocoo()
        cols = self.col_map[hist.col]
        keep = cols >= 0
        m = sp.csr_matrix(
            (hist.data[keep], (hist.row[keep], cols[keep])),
            shape=(len(users), len(self.emb.item_ids)),
            dtype=np.float32,
        )
        return self.emb.fold_in(m, num_threads)


def embedding_view(snap: SnapshotArrays, emb: ALSEmbeddings) -> EmbeddingView:
    item_vecs, known = aligned_item_factors(emb, snap.item_ids)
    col_map = pd.Index(np.asarray(emb.item_ids)).get_indexer(pd.Index(snap.item_ids))
    return EmbeddingView(emb=emb, item_vecs=item_vecs, item_known=known, col_map=col_map)


@dataclass
class ScoredCandidates:
    cands: CandidateSet
    X: np.ndarray
    scores: np.ndarray | None
    user_vecs: np.ndarray


def scored_candidates(
    snap: SnapshotArrays,
    view: EmbeddingView,
    users: np.ndarray,
    cfg: CandidateConfig,
    booster=None,
    allowed: np.ndarray | None = None,
    drift_boost: float = 1.0,
    num_iteration: int | None = None,
    num_threads: int = 2,
    lists: ItemLists | None = None,
) -> ScoredCandidates:
    """Candidates and their features for `users`; ranker scores when a booster is given.
    `lists`: the snapshot's `item_lists`, when the caller keeps them across batches."""
    with stage("candidates", rows_in=len(users)) as st:
        uv = view.user_vecs(snap, users, num_threads)
        cands = candidate_set(snap, users, uv, view.item_vecs, cfg, allowed=allowed, lists=lists)
        st.rows_out = len(cands.row)
    with stage("candidate_features", rows_in=len(cands.row)):
        feats = ranker_features(snap, cands, uv, view.item_vecs, drift_boost=drift_boost)
    scores = None
    if booster is not None:
        with stage("ranker_predict", rows_in=len(feats.X)):
            scores = booster.predict(feats.X, num_iteration=num_iteration, num_threads=num_threads)
    return ScoredCandidates(cands=cands, X=feats.X, scores=scores, user_vecs=uv)


def top_k(
    row: np.ndarray, item: np.ndarray, score: np.ndarray, n_rows: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k items with the highest score (ties, at float32 precision, by item):
    (items, scores), -1 / NaN padded."""
    order = row_value_order(row, score, item)
    r, it, sc = row[order], item[order], score[order]
    pos = positions_in_rows(r)
    keep = pos < k
    recs = np.full((n_rows, k), -1, dtype=np.int64)
    vals = np.full((n_rows, k), np.nan, dtype=np.float64)
    recs[r[keep], pos[keep]] = it[keep]
    vals[r[keep], pos[keep]] = sc[keep]
    return recs, vals


def fill_rows(
    items: np.ndarray,
    slots: np.ndarray,
    fallback: np.ndarray,
    cats: np.ndarray | None = None,
    cap: int | None = None,
) -> np.ndarray:
    """Fill -1 entries of `items` at column positions `slots` from `fallback`, in place and in
    order, skipping items already in the row and (with `cats`, `cap`) categories at their cap.
    Returns the mask of filled entries."""
    filled = np.zeros(items.shape, dtype=bool)
    rows = np.flatnonzero((items[:, slots] < 0).any(axis=1))
    fb = fallback.tolist()
    capped = bool(cap) and cats is not None
    for r in rows:  # only rows with gaps (few warm users; cold users are filled in bulk)
        row = items[r]
        have = set(row[row >= 0].tolist())
        counts: dict[int, int] = {}
        if capped:
            for it in row[row >= 0]:
                counts[cats[it]] = counts.get(cats[it], 0) + 1
        it_fb = iter(fb)
        for c in slots:
            if row[c] >= 0:
                continue
            for cand in it_fb:
                if cand in have or (capped and counts.get(cats[cand], 0) >= cap):
                    continue
                row[c] = cand
                have.add(cand)
                if capped:
                    counts[cats[cand]] = counts.get(cats[cand], 0) + 1
                filled[r, c] = True
                break
    return filled


def pad_lists(recs: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """A copy of `recs` with -1 slots filled by fallback items (in order) not already in the row."""
    out = recs.copy()
    fill_rows(out, np.arange(out.shape[1]), fallback)
    return out
