"""The cutoffs of one training run's three snapshots, from its `as_of` and label horizon h.

The ranker trains on features as of `as_of - 2h` with labels from `[as_of - 2h, as_of - h)`
and is evaluated on features as of `as_of - h` with labels from `[as_of - h, as_of)`; scoring
uses features as of `as_of`. The train flow and the tests take the windows from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class TrainingWindows:
    """Snapshot cutoffs: `train` < `eval` < `serve` (= as_of), h apart."""

    train: datetime
    eval: datetime
    serve: datetime

    def cutoffs(self) -> dict[str, datetime]:
        """Snapshot name -> its cutoff, in build order."""
        return {"train": self.train, "eval": self.eval, "serve": self.serve}

    def label_windows(self) -> dict[str, tuple[datetime, datetime]]:
        """Snapshot name -> [start, end) of its labels."""
        return {"train": (self.train, self.eval), "eval": (self.eval, self.serve)}

    @property
    def eval_window(self) -> str:
        return f"{self.eval.isoformat()}/{self.serve.isoformat()}"

    @property
    def train_window(self) -> str:
        return f"{self.train.isoformat()}/{self.eval.isoformat()}"


def training_windows(as_of: datetime, label_horizon_days: float) -> TrainingWindows:
    """The three snapshot cutoffs of a training run as of `as_of` with label horizon h."""
    h = timedelta(days=label_horizon_days)
    return TrainingWindows(train=as_of - 2 * h, eval=as_of - h, serve=as_of)
