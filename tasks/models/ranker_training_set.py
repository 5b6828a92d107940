"""The ranker's training set: candidate groups of labelled users with graded labels.

Features come from the `train` snapshot (as of `as_of - 2h`), labels from
`[as_of - 2h, as_of - h)`. Users are sampled (seeded); groups without any positive are
dropped (they carry no lambdarank gradient). A seeded share of users is held out for early
stopping, never the evaluation window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recpipe.errors import TrainingDataError
from recpipe.tasks.candidates.candidate_sets import CandidateConfig, item_lists
from recpipe.tasks.candidates.ranker_features import FEATURE_NAMES
from recpipe.tasks.common.row_order import positions_in_rows
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.features.ranking_labels import LabelSet, sampled_label_rows
from recpipe.tasks.features.snapshot_arrays import SnapshotArrays
from recpipe.tasks.models.candidate_scoring import EmbeddingView, scored_candidates

logger = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """Rows sorted by group; `group` holds rows per user; `valid` marks held-out users' rows."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    group_valid: np.ndarray
    names: list[str]

    def split(self) -> tuple[tuple, tuple]:
        row_valid = np.repeat(self.group_valid, self.group)
        tr, va = ~row_valid, row_valid
        return (
            (self.X[tr], self.y[tr], self.group[~self.group_valid]),
            (self.X[va], self.y[va], self.group[self.group_valid]),
        )

    def save(self, path: Path) -> Path:
        np.savez(
            path,
            X=self.X,
            y=self.y,
            group=self.group,
            group_valid=self.group_valid,
            names=np.array(self.names),
        )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> TrainingSet:
        with np.load(path) as z:
            return cls(z["X"], z["y"], z["group"], z["group_valid"], [str(n) for n in z["names"]])


def ranker_training_set(
    snap: SnapshotArrays,
    view: EmbeddingView,
    labels: LabelSet,
    cand_cfg: CandidateConfig,
    max_users: int | None = None,
    valid_share: float = 0.2,
    seed: int = 42,
    batch_users: int = 5000,
    negatives_per_user: int = 40,
) -> TrainingSet:
    """Build (X, y, group) for labelled users known at the train cutoff.

    Every positive candidate is kept with a seeded sample of at most `negatives_per_user`
    negatives per user (0 keeps all), which bounds training rows without losing signal.
    """
    rng = np.random.default_rng(seed)
    rows = sampled_label_rows(snap.user_ids, labels, max_users, rng)
    users, truth = snap.user_index(labels.user_ids[rows]), labels.truth[rows]
    Xs, ys, groups = [], [], []
    lists = item_lists(snap, cand_cfg)
    for start in range(0, len(users), batch_users):
        sl = slice(start, min(start + batch_users, len(users)))
        sc = scored_candidates(snap, view, users[sl], cand_cfg, lists=lists)
        y = np.asarray(truth[sl][sc.cands.row, sc.cands.item]).ravel().astype(np.int32)
        per_user = sc.cands.per_user()
        pos_per_user = np.bincount(sc.cands.row[y > 0], minlength=len(per_user))
        keep_user = pos_per_user > 0
        keep_row = keep_user[sc.cands.row]
        if negatives_per_user > 0:
            neg = y == 0
            order = np.lexsort((rng.random(len(y)), neg, sc.cands.row))
            r_sorted = sc.cands.row[order]
            within = positions_in_rows(r_sorted)
            npos = pos_per_user[r_sorted]
            sampled = np.zeros(len(y), dtype=bool)
            sampled[order] = within < npos + negatives_per_user  # positives sort first
            keep_row &= sampled
            per_user = np.bincount(sc.cands.row[keep_row], minlength=len(per_user))
        Xs.append(sc.X[keep_row])
        ys.append(y[keep_row])
        groups.append(per_user[keep_user])
        logger.info("training set: %d/%d users", sl.stop, len(users))
    group = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
    valid = rng.random(len(group)) < valid_share
    if len(group) >= 2 and not valid.any():
        valid[0] = True
    return TrainingSet(
        X=np.concatenate(Xs) if Xs else np.zeros((0, len(FEATURE_NAMES)), np.float32),
        y=np.concatenate(ys) if ys else np.zeros(0, np.int32),
        group=group,
        group_valid=valid,
        names=list(FEATURE_NAMES),
    )


@dataclass
class TrainingSetFile:
    path: str
    n_rows: int
    n_groups: int
    n_positive: int
    seconds: float


def ranker_training_set_file(
    warehouse: Path,
    snapshots: list[str],
    emb_paths: list[str],
    cand_cfg: CandidateConfig,
    max_users: int,
    seed: int,
    out_path: str,
) -> TrainingSetFile:
    """Build the training set of each snapshot in `snapshots` (features) and its labels, with
    the ALS factors in `emb_paths` (one per snapshot, same order), stack them and save to
    `out_path`; at most `max_users` labelled users per snapshot."""
    with stage("training_set") as st:
        result = _training_set_file(
            warehouse, snapshots, emb_paths, cand_cfg, max_users, seed, out_path
        )
        st.rows_out = result.n_rows
    return result


def _training_set_file(
    warehouse: Path,
    snapshots: list[str],
    emb_paths: list[str],
    cand_cfg: CandidateConfig,
    max_users: int,
    seed: int,
    out_path: str,
) -> TrainingSetFile:
    import time

    from recpipe.tasks.features.ranking_labels import label_set
    from recpipe.tasks.features.snapshot_arrays import (
        snapshot_arrays,
        snapshot_item_ids,
        snapshot_user_ids,
    )
    from recpipe.tasks.models.als_embeddings import ALSEmbeddings
    from recpipe.tasks.models.candidate_scoring import embedding_view

    t0 = time.perf_counter()
    parts = []
    for j, (snapshot, emb_path) in enumerate(zip(snapshots, emb_paths, strict=True)):
        labels = label_set(warehouse, snapshot, snapshot_item_ids(warehouse, snapshot))
        # only the sampled users' features are loaded: memory and time follow max_users
        sampled = sampled_label_rows(
            snapshot_user_ids(warehouse, snapshot),
            labels,
            max_users,
            np.random.default_rng(seed + j),
        )
        snap = snapshot_arrays(warehouse, snapshot, only_user_ids=labels.user_ids[sampled])
        view = embedding_view(snap, ALSEmbeddings.load(emb_path))
        parts.append(
            ranker_training_set(snap, view, labels, cand_cfg, max_users=max_users, seed=seed + j)
        )
    ts = TrainingSet(
        X=np.concatenate([p.X for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        group=np.concatenate([p.group for p in parts]),
        group_valid=np.concatenate([p.group_valid for p in parts]),
        names=parts[0].names,
    )
    if len(ts.group) < 2:
        raise TrainingDataError(
            f"only {len(ts.group)} users with a positive among their candidates in the "
            "training window: too little data to train a ranker (use a longer "
            "label horizon or more history)"
        )
    ts.save(Path(out_path))
    return TrainingSetFile(
        str(out_path), len(ts.y), len(ts.group), int((ts.y > 0).sum()), time.perf_counter() - t0
    )
