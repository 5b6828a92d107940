"""Suites registered once per process: each run sees only its own frame and parameters, and no
run keeps its frame, or its result, alive afterwards."""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from recpipe.tasks.common.expectation_suites import _context, validate_frame

PARAMS = {
    "event_types": ["view", "cart", "purchase"],
    "min_ts": pd.Timestamp("2020-01-01"),
    "max_ts": pd.Timestamp("2030-01-01"),
}


def _events(n: int = 50, price: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": range(n),
            "item_id": range(n),
            "event_type": ["view"] * n,
            "ts": pd.date_range("2025-01-01", periods=n, freq="h").astype("datetime64[ns]"),
            "session_id": [f"s{i}" for i in range(n)],
            "price": [price] * n,
            "quantity": [1.0] * n,
        }
    )


def test_runs_of_one_suite_do_not_carry_frames_or_parameters_over():
    assert validate_frame(_events(), "events", PARAMS).success
    bad = validate_frame(_events(price=-2.0), "events", PARAMS)
    assert not bad.success
    assert any("price" in f for f in bad.failures()), bad.failures()
    # the good frame passes again after the bad one, and with other parameters it fails
    assert validate_frame(_events(), "events", PARAMS).success
    early = {**PARAMS, "max_ts": pd.Timestamp("2024-06-01")}
    late = validate_frame(_events(), "events", early)
    assert not late.success
    assert any("ts" in f for f in late.failures()), late.failures()
    assert validate_frame(_events(), "events", PARAMS).success


def test_a_run_keeps_no_reference_to_its_frame_nor_its_result():
    frame = _events()
    ref = weakref.ref(frame)
    assert validate_frame(frame, "events", PARAMS).success
    del frame
    gc.collect()
    assert ref() is None
    # the shared context keeps no result of the run
    assert _context().validation_results_store.list_keys() == []


def test_runs_from_threads_each_get_their_own_outcome():
    frames = [_events(price=-1.0 if i % 2 else 1.0) for i in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda f: validate_frame(f, "events", PARAMS), frames))
    assert [r.success for r in results] == [i % 2 == 0 for i in range(6)]
