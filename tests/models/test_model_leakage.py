"""Point-in-time correctness of the ranker's training set.

For the train cutoff (features as of `as_of - 2h`, labels in `[as_of - 2h, as_of - h)`), the
training set (X, y, group) may depend only on events before `as_of - h`: whatever happens at or
after it (events deleted, shuffled in time and type, new users) changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from model_helpers import EVENT_TYPES, ingest, training_set, windows

from recpipe.tasks.models.ranker_training_set import TrainingSet


def _assert_same(a: TrainingSet, b: TrainingSet) -> None:
    assert a.names == b.names
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.group_valid, b.group_valid)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.X, b.X)  # NaN == NaN here; bitwise otherwise


@pytest.fixture(scope="module")
def sets(tiny_shop, tmp_path_factory) -> dict[str, TrainingSet]:
    root = tmp_path_factory.mktemp("model_leakage")
    events = pd.read_parquet(tiny_shop / "events")
    last = events["ts"].max().to_pydatetime()
    as_of = last.replace(microsecond=0) + timedelta(seconds=1)  # as default_as_of on the full lake
    label_end = windows(as_of)["train"][1]  # as_of - h
    end = pd.Timestamp(label_end)
    past, future = events[events.ts < end], events[events.ts >= end]
    rng = np.random.default_rng(5)

    kept = future.sample(frac=0.7, random_state=2)  # 30% of the future deleted
    span = (pd.Timestamp(as_of) - end).total_seconds()
    shuffled = kept.assign(
        ts=end
        + pd.to_timedelta(rng.uniform(0, span, len(kept)), unit="s").astype("timedelta64[us]"),
        event_type=rng.choice(EVENT_TYPES, len(kept)),
        session_id=kept.session_id + 10**9,
    )
    newcomers = kept.head(300).assign(
        user_id=kept.user_id.head(300) + 10**6, session_id=kept.session_id.head(300) + 2 * 10**9
    )
    # past events replayed exactly at the label-window end: invisible (the window is half-open)
    replay = past.drop_duplicates(["user_id", "item_id", "session_id"]).sample(200, random_state=3)
    at_end = replay.assign(
        ts=end, event_type="purchase", session_id=lambda d: d.session_id + 3 * 10**9
    )
    # ...and the same replay one microsecond earlier: inside the window, labels must see it
    before_end = at_end.assign(ts=end - pd.Timedelta(microseconds=1))

    frames = {
        "past_only": past,
        "future_changed": pd.concat([past, shuffled, newcomers, at_end]),
        "edge_inside": pd.concat([past, before_end]),
    }
    out = {}
    for name, frame in frames.items():
        path = root / f"{name}.parquet"
        frame.sort_values(["user_id", "ts"]).to_parquet(path, index=False)
        lake = ingest(path, root / name / "lake", tiny_shop)
        out[name] = training_set(lake, root / name / "warehouse.duckdb", as_of)
    return out


def test_training_set_ignores_everything_from_the_label_window_end(sets):
    a, b = sets["past_only"], sets["future_changed"]
    print(f"training set: {len(a.y)} rows, {len(a.group)} groups, {int((a.y > 0).sum())} positives")
    assert len(a.group) >= 20 and (a.y > 0).sum() >= 50, "too small to mean anything"
    _assert_same(a, b)


def test_an_event_just_inside_the_label_window_does_count(sets):
    """Guard against a vacuous test: the same replay 1 µs before the window end changes labels."""
    a, c = sets["past_only"], sets["edge_inside"]
    with pytest.raises(AssertionError):
        _assert_same(a, c)
    assert (c.y == 3).sum() > (a.y == 3).sum()  # the replayed purchases are grade-3 labels
