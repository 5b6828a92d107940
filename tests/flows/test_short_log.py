"""A log much shorter than the default protocol (two hours of a shop's events) still gets a
table: the label windows follow the log's span, and the run says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from ops_helpers import clean_env
from recs_helpers import published_rows

from recpipe.tasks.features.training_windows import SPAN_HORIZONS, training_windows
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

RECPIPE = Path(sys.executable).parent / "recpipe"


def test_a_short_log_shortens_the_horizon_and_a_long_one_keeps_it():
    end = pd.Timestamp("2024-05-01 12:00").to_pydatetime()
    short = training_windows(end, 7.0, first_event=end - pd.Timedelta(hours=2))
    assert short.serve - short.eval == pd.Timedelta(hours=2) / SPAN_HORIZONS
    assert "spans 2 hours" in short.note and "0.5 hours" in short.note
    long = training_windows(end, 7.0, first_event=end - pd.Timedelta(days=90))
    assert long.serve - long.eval == pd.Timedelta(days=7) and long.note == ""


@pytest.mark.slow
def test_recpipe_run_on_a_two_hour_log_publishes_a_table(tmp_path):
    synthetic_shop(tmp_path / "shop", "small", seed=7)
    log = pd.read_parquet(tmp_path / "shop" / "events")
    t0, t1 = log["ts"].min(), log["ts"].max()
    log["ts"] = pd.Timestamp("2024-05-01 10:00") + (log["ts"] - t0) / (t1 - t0) * pd.Timedelta(
        hours=2
    )
    log.to_parquet(tmp_path / "two-hours.parquet", index=False)
    data = tmp_path / "data"
    out = subprocess.run(
        [str(RECPIPE), "run", "--events", "two-hours.parquet", "--items",
         "shop/items.parquet", "--data-dir", str(data)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "short log: the log spans 2 hours" in out.stderr

    _, rows = published_rows(data)
    assert rows["user_id"].nunique() == log["user_id"].nunique()
    client = MlflowClient(tracking_uri=f"sqlite:///{data / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("recpipe").experiment_id])
    assert "spans 2 hours" in run.data.tags["windows.note"]


@pytest.mark.slow
def test_a_log_too_thin_for_a_ranker_publishes_the_best_baseline(tmp_path):
    """Every event is a purchase of an item nobody met before, so no label is ever among a
    user's candidates and no ranker can be trained: the run serves its best baseline."""
    import numpy as np

    rng = np.random.default_rng(5)
    n = 600
    log = pd.DataFrame(
        {
            "user_id": rng.integers(0, 120, n),
            "item_id": np.arange(n) + 1000,
            "event_type": "purchase",
            "ts": pd.Timestamp("2024-03-01") + pd.to_timedelta(np.sort(rng.uniform(0, 60, n)), "D"),
        }
    )
    log.to_parquet(tmp_path / "thin.parquet", index=False)
    items = pd.DataFrame({"item_id": log["item_id"], "category": (log["item_id"] % 7).astype(str)})
    items.to_parquet(tmp_path / "items.parquet", index=False)
    data = tmp_path / "data"
    out = subprocess.run(
        [str(RECPIPE), "run", "--events", "thin.parquet", "--items", "items.parquet",
         "--data-dir", str(data)],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    _, rows = published_rows(data)
    assert rows["user_id"].nunique() == log["user_id"].nunique()
    assert "ranker" not in set(rows["source"])
    assert "baseline" in set(rows["source"])  # warm users get the baseline's lists
    client = MlflowClient(tracking_uri=f"sqlite:///{data / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("recpipe").experiment_id])
    tags = run.data.tags
    assert tags["recpipe.model_kind"] == "baseline"
    assert "too little data to train a ranker" in tags["recpipe.fallback_reason"]
    assert tags["recpipe.baseline"] == tags["best_baseline"]
    assert f"baseline.{tags['recpipe.baseline']}.ndcg_at_10" in run.data.metrics
