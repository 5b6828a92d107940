"""The cutoffs of one training run's three snapshots, from its `as_of` and label horizon h.

The ranker trains on features as of `as_of - 2h` with labels from `[as_of - 2h, as_of - h)`
and is evaluated on features as of `as_of - h` with labels from `[as_of - h, as_of)`; scoring
uses features as of `as_of`. The train flow and the tests take the windows from here.

A shop whose training window labels few users (fewer than `max_train_users`) also trains on up
to `MAX_TRAIN_WINDOWS - 1` earlier windows of the same length (`train_1` at `as_of - 3h` with
labels `[as_of - 3h, as_of - 2h)`, and so on), each with its own point-in-time features, as long
as each keeps at least one horizon of history: a big shop pays nothing for them, a small one gets
several times the training examples.

A log shorter than four horizons (say two hours of a marketplace) would leave the training
window empty: there the horizon follows the log's span (a quarter of it: half the log is
history for the train snapshot, a quarter train labels, a quarter evaluation labels), and the
windows say so in `note`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

logger = logging.getLogger(__name__)
SPAN_HORIZONS = 4  # a log must span this many label horizons for the default protocol
MAX_TRAIN_WINDOWS = 8  # the train window and at most seven earlier ones


@dataclass(frozen=True)
class TrainingWindows:
    """Snapshot cutoffs: `train` < `eval` < `serve` (= as_of), h apart."""

    train: datetime
    eval: datetime
    serve: datetime
    note: str = ""  # why the horizon differs from the one asked for ("" when it does not)
    earlier: tuple[datetime, ...] = ()  # cutoffs of train_1, train_2 ... (newest first)

    @property
    def horizon(self):
        return self.serve - self.eval

    def train_snapshots(self) -> list[str]:
        """The snapshots the ranker trains on: `train`, then `train_1` ... (newest first)."""
        return ["train", *(f"train_{j}" for j in range(1, len(self.earlier) + 1))]

    def cutoffs(self) -> dict[str, datetime]:
        """Snapshot name -> its cutoff, in build order (oldest first: each ALS fit starts from
        the previous snapshot's factors, never from a later one's)."""
        older = {f"train_{j}": cut for j, cut in reversed(list(enumerate(self.earlier, 1)))}
        return older | {"train": self.train, "eval": self.eval, "serve": self.serve}

    def label_windows(self) -> dict[str, tuple[datetime, datetime]]:
        """Snapshot name -> [start, end) of its labels."""
        h = self.horizon
        older = {f"train_{j}": (cut, cut + h) for j, cut in enumerate(self.earlier, 1)}
        return {"train": (self.train, self.eval), "eval": (self.eval, self.serve)} | older

    def with_train_windows(self, n: int, first_event: datetime | None) -> TrainingWindows:
        """These windows with up to `n` training windows in all: earlier ones are added while
        each keeps at least one horizon of history after `first_event`."""
        h, earlier = self.horizon, []
        for j in range(1, min(n, MAX_TRAIN_WINDOWS)):
            cut = self.train - j * h
            if first_event is not None and cut - first_event < h:
                break
            earlier.append(cut)
        return replace(self, earlier=tuple(earlier))

    @property
    def eval_window(self) -> str:
        return f"{self.eval.isoformat()}/{self.serve.isoformat()}"

    @property
    def train_window(self) -> str:
        """The train window, and the earlier ones stacked with it when there are any."""
        windows = [
            (start, end)
            for snap, (start, end) in self.label_windows().items()
            if snap.startswith("train")
        ]
        return ", ".join(f"{start.isoformat()}/{end.isoformat()}" for start, end in windows)


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


def stacked_training_windows(
    lake_dir: Path,
    as_of: datetime,
    label_horizon_days: float,
    first_event: datetime | None,
    max_train_users: int,
) -> TrainingWindows:
    """`training_windows`, plus earlier training windows when the train window's labels reach
    fewer than `max_train_users` users (counted on the lake: users with an event in it)."""
    import math

    from recpipe.tasks.features.ranking_labels import window_users

    windows = training_windows(as_of, label_horizon_days, first_event)
    n_users = window_users(lake_dir, windows.train, windows.eval)
    n = 1 if n_users >= max_train_users else math.ceil(max_train_users / max(n_users, 1))
    windows = windows.with_train_windows(n, first_event)
    if windows.earlier:
        logger.info(
            "%d users in the train window (< max_train_users %d): training on %d windows",
            n_users,
            max_train_users,
            1 + len(windows.earlier),
        )
    return windows


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.3g} days" if days >= 1 else f"{delta.total_seconds() / 3600:.3g} hours"
