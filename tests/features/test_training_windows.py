"""The three snapshot cutoffs of a training run."""

from __future__ import annotations

from datetime import datetime

from recpipe.tasks.features.training_windows import training_windows


def test_windows_are_h_apart_and_labels_end_where_the_next_snapshot_starts():
    w = training_windows(datetime(2026, 3, 15, 12), 7.0)
    assert w.cutoffs() == {
        "train": datetime(2026, 3, 1, 12),
        "eval": datetime(2026, 3, 8, 12),
        "serve": datetime(2026, 3, 15, 12),
    }
    assert w.label_windows() == {"train": (w.train, w.eval), "eval": (w.eval, w.serve)}
    assert w.eval_window == "2026-03-08T12:00:00/2026-03-15T12:00:00"
    assert w.train_window == "2026-03-01T12:00:00/2026-03-08T12:00:00"


def test_fractional_horizons():
    w = training_windows(datetime(2026, 1, 1), 0.5)
    assert (w.serve - w.eval).total_seconds() == (w.eval - w.train).total_seconds() == 12 * 3600
