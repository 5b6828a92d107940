"""`recpipe run` takes the options of `train` and `recommend`, and a TOML --config of the run's
typed parameters, so one command tunes the pipeline on a shop's own log: checked on the MLflow
run's params and on the published table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from mlflow.tracking import MlflowClient
from ops_helpers import clean_env
from recs_helpers import published_rows

from recpipe.tasks.ingest import event_lake
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow

RECPIPE = Path(sys.executable).parent / "recpipe"


def test_run_passes_its_options_and_config_through(tmp_path):
    synthetic_shop(tmp_path / "shop", "tiny", seed=7)
    # the shop's own names for purchases and carts, renamed by --event-map; a timestamp floor
    # from RECPIPE_MIN_TS that quarantines the first 0.5% of the log
    shop_log = duckdb.sql(
        f"select * replace (case event_type when 'purchase' then 'Transaction' "
        f"when 'cart' then 'addtocart' else event_type end as event_type) "
        f"from read_parquet('{tmp_path}/shop/events/**/*.parquet')"
    ).df()
    (tmp_path / "log").mkdir()
    shop_log.to_parquet(tmp_path / "log" / "events.parquet", index=False)
    floor = shop_log["ts"].quantile(0.005)
    config = tmp_path / "run.toml"
    config.write_text(
        'events = "log/events.parquet"\n'
        "[train]\nseed = 5\n[train.ranker]\nn_estimators = 40\n"
        '[recommend]\nrepurchase = "exclude"\ntop_k = 15\n'
    )
    data = tmp_path / "data"
    out = subprocess.run(
        [str(RECPIPE), "run", "--config", str(config), "--items", "shop/items.parquet",
         "--data-dir", str(data), "--factors", "8", "--top-k", "10", "--explore-share", "0",
         "--event-map", "transaction=purchase", "--event-map", "AddToCart=cart"],
        cwd=tmp_path, env=clean_env(RECPIPE_MIN_TS=str(floor)), capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    client = MlflowClient(tracking_uri=f"sqlite:///{data / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("recpipe").experiment_id])
    params = run.data.params
    assert params["als.factors"] == "8"  # option
    assert params["ranker.n_estimators"] == "40" and params["seed"] == "5"  # config file

    landed = (
        duckdb.sql(
            "select event_type, count(*) as n, min(ts) as first from read_parquet($f) group by 1",
            params={"f": event_lake.lake_paths(data / "lake", "events")},
        )
        .df()
        .set_index("event_type")
    )
    expected = shop_log[shop_log["ts"] >= floor]["event_type"].value_counts()
    assert landed.loc["purchase", "n"] == expected["Transaction"]  # renamed, all landed
    assert landed.loc["cart", "n"] == expected["addtocart"]
    assert landed["first"].min() >= floor
    quarantined = duckdb.sql(
        "select reason, count(*) from read_parquet($f) group by 1",
        params={"f": event_lake.lake_paths(data / "lake", "quarantine")},
    ).fetchall()
    assert dict(quarantined) == {"ts_before_min": int((shop_log["ts"] < floor).sum())}

    _, rows = published_rows(data)
    assert (rows.groupby("user_id").size() == 10).all()  # the option wins over the file's 15
    assert "explore" not in set(rows["source"])  # explore_share 0
