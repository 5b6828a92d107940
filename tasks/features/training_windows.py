"""The cutoffs of one training run's three snapshots, from its `as_of` and label horizon h.

The ranker trains on features as of `as_of - 2h` with labels from `[as_of - 2h, as_of - h)`
and is evaluated on features as of `as_of - h` with labels from `[as_of - h, as_of)`; scoring
uses features as of `as_of`. The train flow and the tests take the windows from here.

A log shorter than four horizons (say two hours of a marketplace) would leave the training
window empty: there the horizon follows the log's span (a quarter of it: half the log is
history for the train snapshot, a quarter train labels, a quarter evaluation labels), and the
windows say so in `note`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

logger = logging.getLogger(__name__)
SPAN_HORIZONS = 4  # a log must span this many label horizons for the default protocol


@dataclass(frozen=True)
class TrainingWindows:
    """Snapshot cutoffs: `train` < `eval` < `serve` (= as_of), h apart."""

    train: datetime
    eval: datetime
    serve: datetime
    note: str = ""  # why the horizon differs from the one asked for ("" when it does not)

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


def training_windows(
    as_of: datetime, label_horizon_days: float, first_event: datetime | None = None
) -> TrainingWindows:
    """The three snapshot cutoffs of a training run as of `as_of` with label horizon h; when
    the log (from `first_event`) spans less than `SPAN_HORIZONS` horizons, h is its span over
    `SPAN_HORIZONS`."""
    h = timedelta(days=label_horizon_days)
    note = ""
    if first_event is not None and as_of - first_event < SPAN_HORIZONS * h:
        span = as_of - first_event
        h = span / SPAN_HORIZONS
        note = (
            f"the log spans {_days(span)}, less than {SPAN_HORIZONS} label horizons of "
            f"{_days(timedelta(days=label_horizon_days))}: the horizon follows it ({_days(h)})"
        )
        logger.warning("short log: %s", note)
    return TrainingWindows(train=as_of - 2 * h, eval=as_of - h, serve=as_of, note=note)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.3g} days" if days >= 1 else f"{delta.total_seconds() / 3600:.3g} hours"
