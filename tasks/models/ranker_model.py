"""LightGBM lambdarank over (user, candidate) groups, sklearn-shaped and seeded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recpipe.tasks.common.stage_timings import stage

logger = logging.getLogger(__name__)


class RankerParams(BaseModel):
    """LightGBM lambdarank hyperparameters a user tunes (the one place of their defaults)."""

    n_estimators: int = Field(
        150, ge=1, le=5000, description="Boosting rounds (early stopping may use fewer)."
    )
    learning_rate: float = Field(
        0.1, gt=0, le=1, description="Shrinkage of each tree's contribution (smaller: more rounds)."
    )
    num_leaves: int = Field(31, ge=2, le=1024, description="Leaves per tree (model capacity).")
    min_data_in_leaf: int = Field(
        50, ge=1, description="Fewest training rows in a leaf (guards against overfitting)."
    )
    early_stopping_rounds: int = Field(
        30, ge=1, description="Stop after this many rounds without a better validation ndcg@10."
    )
    compact_tolerance: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Keep the fewest trees whose validation ndcg@10 is within this share of "
        "the best: trees that add less cost scoring time without changing the lists.",
    )


_DEFAULT = RankerParams()


@dataclass
class LambdaRanker:
    """Hyperparameters in the constructor (the tunable ones default from `RankerParams`); `fit`
    trains a booster with early stopping.

    Labels are integer grades (0 = no interaction); `label_gain` is explicit, one gain per grade.
    """

    n_estimators: int = _DEFAULT.n_estimators
    learning_rate: float = _DEFAULT.learning_rate
    num_leaves: int = _DEFAULT.num_leaves
    min_data_in_leaf: int = _DEFAULT.min_data_in_leaf
    feature_fraction: float = 0.6
    bagging_fraction: float = 0.6
    lambda_l2: float = 1.0
    max_bin: int = 63
    label_gain: tuple[float, ...] = (0.0, 1.0, 3.0, 7.0)
    eval_at: int = 10
    early_stopping_rounds: int = _DEFAULT.early_stopping_rounds
    compact_tolerance: float = _DEFAULT.compact_tolerance  # relative, see `fit`
    random_state: int = 42
    num_threads: int = 2
    booster: object = field(default=None, repr=False)
    best_iteration: int = 0  # trees kept (after compaction)
    stopped_iteration: int = 0  # best validation iteration found by early stopping
    best_score: float = float("nan")

    def lgb_params(self) -> dict:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [self.eval_at],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "label_gain": list(self.label_gain),
            "max_bin": self.max_bin,
            "lambdarank_truncation_level": max(self.eval_at * 2, 20),
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        group: np.ndarray,
        feature_names: list[str],
        X_val: np.ndarray,
        y_val: np.ndarray,
        group_val: np.ndarray,
    ) -> LambdaRanker:
        """Train on groups (`group` = rows per user, in row order); stop early on the validation groups."""
        import lightgbm as lgb

        if int(np.max(y, initial=0)) >= len(self.label_gain):
            raise ValueError(f"label {int(np.max(y))} has no gain in label_gain={self.label_gain}")
        train = lgb.Dataset(
            X,
            y,
            group=group,
            feature_name=feature_names,
            free_raw_data=True,
            params={"max_bin": self.max_bin, "verbosity": -1},
        )
        valid = lgb.Dataset(X_val, y_val, group=group_val, reference=train)
        curve: dict = {}
        self.booster = lgb.train(
            self.lgb_params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(curve),
            ],
        )
        # the fewest trees within compact_tolerance (relative) of the best validation score: on a
        # flat curve the last trees cost scoring time for a negligible gain
        valid_ndcg = np.asarray(curve["valid"][f"ndcg@{self.eval_at}"])
        best = self.stopped_iteration = int(self.booster.best_iteration or len(valid_ndcg))
        target = (1.0 - self.compact_tolerance) * valid_ndcg[:best].max()
        self.best_iteration = int(np.argmax(valid_ndcg[:best] >= target)) + 1
        self.best_score = float(valid_ndcg[self.best_iteration - 1])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(
            X, num_iteration=self.best_iteration, num_threads=self.num_threads
        )

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path), num_iteration=self.best_iteration)
        return path

    def importance(self) -> tuple[list[str], np.ndarray]:
        """Feature names and total gain importance."""
        return (
            list(self.booster.feature_name()),
            self.booster.feature_importance("gain", iteration=self.best_iteration),
        )


@dataclass
class RankerFile:
    path: str
    best_iteration: int
    best_score: float
    importance: dict[str, float]
    seconds: float


def ranker_model_file(training_set_path: str, params: dict, seed: int, out_path: str) -> RankerFile:
    """Train the lambdarank booster on a saved training set; save it natively to `out_path`."""
    import time

    from recpipe.tasks.models.ranker_training_set import TrainingSet

    t0 = time.perf_counter()
    ts = TrainingSet.load(Path(training_set_path))
    (X, y, g), (Xv, yv, gv) = ts.split()
    with stage("ranker", rows_in=len(y) + len(yv)):
        model = LambdaRanker(random_state=seed, **params).fit(X, y, g, ts.names, Xv, yv, gv)
    model.save(Path(out_path))
    names, gains = model.importance()
    seconds = time.perf_counter() - t0
    logger.info(
        "ranker: %d rows, %d trees kept of best iteration %d, valid ndcg@%d %.4f, %.1fs",
        len(y),
        model.best_iteration,
        model.stopped_iteration,
        model.eval_at,
        model.best_score,
        seconds,
    )
    return RankerFile(
        str(out_path),
        model.best_iteration,
        model.best_score,
        {n: float(v) for n, v in zip(names, gains, strict=True)},
        seconds,
    )
