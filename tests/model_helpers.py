"""The model pipeline for model tests: shop -> lake -> snapshots -> ALS -> ranker -> evaluation.

Cutoffs follow the train flow: with h = 7 days and `as_of` just after the last event, the
`train` snapshot holds features as of `as_of - 2h` with labels in `[as_of - 2h, as_of - h)`,
the `eval` snapshot features as of `as_of - h` with labels in `[as_of - h, as_of)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from recpipe.contract import DEFAULT_EVENT_WEIGHTS, DEFAULT_LABEL_GRADES, EVENT_TYPES
from recpipe.params import TrainParams
from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.evaluation.offline_evaluation import (
    EvalConfig,
    EvaluationResult,
    offline_evaluation,
)
from recpipe.tasks.features.feature_tables import FeatureConfig, feature_tables
from recpipe.tasks.features.ranking_labels import (
    LabelSet,
    interaction_labels,
    label_set,
)
from recpipe.tasks.features.snapshot_arrays import SnapshotArrays, snapshot_arrays
from recpipe.tasks.features.training_windows import training_windows
from recpipe.tasks.ingest.ingested_events import ingested_events
from recpipe.tasks.ingest.lake_cutoffs import default_as_of
from recpipe.tasks.models.als_embeddings import ALSEmbeddings
from recpipe.tasks.models.candidate_scoring import (
    EmbeddingView,
    embedding_view,
    scored_candidates,
    top_k,
)
from recpipe.tasks.models.ranker_model import LambdaRanker
from recpipe.tasks.models.ranker_training_set import TrainingSet, ranker_training_set

HORIZON_DAYS = TrainParams().label_horizon_days
FEATURES = FeatureConfig(event_weights=DEFAULT_EVENT_WEIGHTS)
NOW = datetime(2027, 1, 1)  # "the clock" for ingestion: every synthetic event is in its past
# One thread each: on a shared 2-core box LightGBM's OpenMP threads spin against other
# processes (a 2-thread fit measured 3x slower than 1 thread, with the identical model).
THREADS = 1


def ingest(events: Path, lake: Path, shop: Path) -> Path:
    """Land `events` (file or directory) and the shop's catalogue in `lake`."""
    ingested_events(events, lake, EVENT_TYPES, items=shop / "items.parquet", now=NOW)
    return lake


def windows(as_of: datetime) -> dict[str, tuple[datetime, datetime]]:
    """Feature cutoff and label-window end per snapshot, as the train flow takes them."""
    return training_windows(as_of, HORIZON_DAYS).label_windows()


def build_snapshot(lake: Path, wh: Path, snapshot: str, as_of: datetime) -> None:
    """Feature tables and labels of `snapshot` for the cutoffs derived from `as_of`."""
    cut, end = windows(as_of)[snapshot]
    feature_tables(lake, wh, cut, snapshot, FEATURES)
    interaction_labels(lake, wh, snapshot, cut, end, DEFAULT_LABEL_GRADES)


def fit_view(snap: SnapshotArrays, seed: int = 42) -> EmbeddingView:
    """ALS (default hyperparameters, seeded) on the snapshot, aligned back to it."""
    emb = ALSEmbeddings(random_state=seed, num_threads=THREADS)
    emb.fit(snap.interactions, snap.user_ids, snap.item_ids)
    return embedding_view(snap, emb)


def training_set(
    lake: Path, wh: Path, as_of: datetime, cand_cfg: CandidateConfig | None = None
) -> TrainingSet:
    """The ranker's (X, y, group) for the train cutoff of `as_of`, built from `lake`."""
    build_snapshot(lake, wh, "train", as_of)
    snap = snapshot_arrays(wh, "train")
    return ranker_training_set(
        snap,
        fit_view(snap),
        label_set(wh, "train", snap.item_ids),
        cand_cfg or CandidateConfig(),
        seed=42,
    )


@dataclass
class ModelRun:
    """Everything one end-to-end model run produced, for assertions."""

    shop: Path
    as_of: datetime
    snaps: dict[str, SnapshotArrays]
    views: dict[str, EmbeddingView]
    labels: dict[str, LabelSet]
    ranker: LambdaRanker
    evaluation: EvaluationResult
    cand_cfg: CandidateConfig

    def ranked_top(self, users: np.ndarray, k: int = 10, snapshot: str = "eval") -> np.ndarray:
        """The ranker's top-k snapshot item positions for snapshot user positions (-1 padded)."""
        snap, view = self.snaps[snapshot], self.views[snapshot]
        sc = scored_candidates(
            snap,
            view,
            users,
            self.cand_cfg,
            booster=self.ranker.booster,
            num_iteration=self.ranker.best_iteration,
        )
        return top_k(sc.cands.row, sc.cands.item, sc.scores, len(users), k)[0]


def model_run(shop: Path, root: Path) -> ModelRun:
    """Ingest `shop` into `root`, build both snapshots, fit ALS per snapshot, train and evaluate."""
    lake, wh = ingest(shop / "events", root / "lake", shop), root / "warehouse.duckdb"
    as_of = default_as_of(lake)
    cand_cfg = CandidateConfig()
    snaps, views, labels = {}, {}, {}
    for name in ("train", "eval"):
        build_snapshot(lake, wh, name, as_of)
        snaps[name] = snapshot_arrays(wh, name)
        views[name] = fit_view(snaps[name])
        labels[name] = label_set(wh, name, snaps[name].item_ids)
    ts = ranker_training_set(snaps["train"], views["train"], labels["train"], cand_cfg, seed=42)
    (tr, va) = ts.split()
    ranker = LambdaRanker(num_threads=THREADS).fit(*tr, ts.names, *va)
    evaluation = offline_evaluation(
        snaps["eval"],
        views["eval"],
        labels["eval"],
        ranker.booster,
        cand_cfg,
        EvalConfig(),
        num_iteration=ranker.best_iteration,
    )
    return ModelRun(shop, as_of, snaps, views, labels, ranker, evaluation, cand_cfg)
