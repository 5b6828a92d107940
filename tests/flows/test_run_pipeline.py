"""`run_flow` (ingest -> train -> recommend) end to end on two awkward logs, then the
`recpipe recs` command on the published table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from recs_helpers import pipeline_run, published_rows, view_rows

from recpipe.tasks.serving.shard_inputs import SHARD_INPUTS_DIR

pytestmark = pytest.mark.slow

K = 20
RECPIPE = Path(sys.executable).parent / "recpipe"


@pytest.fixture(scope="module")
def string_ids(prefect_server, tmp_path_factory):
    return pipeline_run("string_ids", tmp_path_factory)


@pytest.fixture(scope="module")
def purchases_only(prefect_server, tmp_path_factory):
    return pipeline_run("purchases_only", tmp_path_factory)


def all_users(run) -> set:
    users = set(pd.read_parquet(run.shop / "users.parquet")["user_id"])
    return users | set(pd.read_parquet(run.events, columns=["user_id"])["user_id"])


def assert_full_table(run) -> pd.DataFrame:
    """Every user has K distinct items ranked 1..K; the view and the flow's summary agree."""
    version, df = published_rows(run.data_dir)
    rec = run.result["recommend"]
    assert version == rec["version"]
    assert rec["n_users"] == len(all_users(run)) == df["user_id"].nunique()
    assert set(df["user_id"]) == all_users(run)
    assert (df.groupby("user_id").size() == K).all()
    assert (df.groupby("user_id")["rank"].agg(lambda r: sorted(r) == list(range(1, K + 1)))).all()
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert (df["model_version"] == str(run.result["train"]["version"])).all()
    pd.testing.assert_frame_equal(view_rows(run.data_dir), df)
    # the shards' split inputs are scratch of the run: gone once the table is published
    split = run.data_dir / SHARD_INPUTS_DIR
    assert not split.exists() or not any(split.iterdir())
    return df


def recs_cli(user_id, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    return subprocess.run(
        [str(RECPIPE), "recs", str(user_id), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def parse_listing(stdout: str) -> pd.DataFrame:
    """The table `recpipe recs` prints after its one-line title."""
    lines = stdout.strip().splitlines()
    header = lines[1].split()
    return pd.DataFrame([line.split() for line in lines[2:]], columns=header)


def test_string_ids_without_item_file(string_ids):
    df = assert_full_table(string_ids)
    assert df["user_id"].str.startswith("u").all() and df["item_id"].str.startswith("i").all()
    assert set(df["source"]) <= {"ranker", "coldstart", "explore", "popular"}
    assert (df["source"] == "ranker").mean() > 0.5  # measured 0.73
    from recpipe.tasks.ingest.event_lake import lake_paths

    assert lake_paths(string_ids.data_dir / "lake", "items") == []


def test_purchase_only_log(purchases_only):
    log = pd.read_parquet(purchases_only.events)
    assert set(log["event_type"]) == {"purchase"} and len(log) > 3000
    df = assert_full_table(purchases_only)
    assert (df["source"] == "ranker").sum() > 1000  # measured 7,560 of 40,000 rows
    catalog = pd.read_parquet(purchases_only.shop / "items.parquet")
    assert not df["item_id"].isin(catalog.loc[~catalog["available"], "item_id"]).any()


@pytest.mark.parametrize("run_name", ["string_ids", "purchases_only"])
def test_recs_command_prints_the_users_list_with_categories(request, run_name):
    run = request.getfixturevalue(run_name)
    log = pd.read_parquet(run.events, columns=["user_id"])
    user = log["user_id"].value_counts().index[0]  # the most active user
    out = recs_cli(user, run.data_dir)
    assert out.returncode == 0, out.stderr
    version, df = published_rows(run.data_dir)
    assert f"user {user} - version {version}" in out.stdout.splitlines()[0]
    shown = parse_listing(out.stdout)
    assert list(shown.columns[:4]) == ["rank", "item_id", "category", "source"]
    mine = df[df["user_id"] == user]
    assert shown["rank"].astype(int).tolist() == mine["rank"].tolist() == list(range(1, K + 1))
    assert shown["item_id"].tolist() == mine["item_id"].astype(str).tolist()
    assert shown["source"].tolist() == mine["source"].tolist()
    if run_name == "purchases_only":
        category = pd.read_parquet(run.shop / "items.parquet").set_index("item_id")["category"]
        assert shown["category"].tolist() == mine["item_id"].map(category).tolist()
    else:  # no item file: the column is there, empty
        assert set(shown["category"]) == {"None"}

    # a user the table does not hold (first seen after the cutoff, a guest) gets the version's
    # default list: the cold-start list of a user without events, without exploration slots
    missing = recs_cli("no-such-user", run.data_dir)
    assert missing.returncode == 0, missing.stderr
    assert "is not in version" in missing.stdout.splitlines()[0]
    default = pd.read_parquet(run.data_dir / "recommendations" / version / "default-list.parquet")
    assert default["rank"].tolist() == list(range(1, K + 1))
    assert (default["source"] == "coldstart").all() and default["item_id"].is_unique
    shown = parse_listing(missing.stdout.split("\n", 1)[1])
    assert shown["item_id"].tolist() == default["item_id"].astype(str).tolist()
    no_events = set(pd.read_parquet(run.shop / "users.parquet")["user_id"]) - set(log["user_id"])
    assert no_events, "the shop has users-file users without events"
    for user in sorted(no_events)[:3]:
        cold = df[(df["user_id"] == user) & (df["source"] == "coldstart")].sort_values("rank")
        assert len(cold) >= K - 2
        assert cold["item_id"].tolist() == default["item_id"].tolist()[: len(cold)]
