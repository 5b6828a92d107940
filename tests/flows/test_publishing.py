"""Publishing recommendation versions: failures at each step leave the previous version
current and intact, the checks reject bad tables, retention, and a refresh without retraining.

The flow tests work on a copy of the session's `string_ids` pipeline run (tiny shop, string
ids, no item file) after one baseline `recommend_flow` run in the copy.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from recs_helpers import (
    EVENT_TYPES,
    NOW,
    pipeline_run,
    published_rows,
    valid_table,
    view_rows,
    write_version,
)

import recpipe.tasks.serving.recommendation_publishing as publishing
import recpipe.tasks.serving.user_recommendations as scoring
from recpipe.errors import PublishError
from recpipe.tasks.serving.recommendation_publishing import (
    current_version,
    ensure_view,
    prune_versions,
    published_version,
    recommendation_checks,
)

slow = pytest.mark.slow
K = 20


# ---------------------------------------------------------------------------------------------
# Flow runs with injected failures


@pytest.fixture(scope="module")
def string_ids(prefect_server, tmp_path_factory):
    return pipeline_run("string_ids", tmp_path_factory)


@pytest.fixture(scope="module")
def data(string_ids, tmp_path_factory) -> Path:
    """A data directory with a champion model and one version published by recommend_flow."""
    from recpipe.flows.recommend import recommend_flow
    from recpipe.params import RecommendParams

    data = tmp_path_factory.mktemp("publishing") / "data"
    shutil.copytree(string_ids.data_dir, data)
    result = recommend_flow(RecommendParams(data_dir=str(data), n_shards=2, workers=2))
    assert current_version(data / "recommendations") == result["version"]
    return data


def run_recommend(data: Path) -> dict:
    from recpipe.flows.recommend import recommend_flow
    from recpipe.params import RecommendParams

    return recommend_flow(RecommendParams(data_dir=str(data), n_shards=2, workers=1))


def version_dirs(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "recommendations").glob("v=*") if p.is_dir())


def state(data: Path) -> dict:
    version, rows = published_rows(data)
    return {"current": version, "versions": version_dirs(data), "rows": rows}


def assert_previous_intact(data: Path, before: dict) -> None:
    """CURRENT, its files, the DuckDB view and the set of version directories are as before."""
    assert current_version(data / "recommendations") == before["current"]
    assert version_dirs(data) == before["versions"]  # the failed version is gone
    version, rows = published_rows(data)
    pd.testing.assert_frame_equal(rows, before["rows"])
    pd.testing.assert_frame_equal(view_rows(data), before["rows"])
    assert (rows.groupby("user_id").size() == K).all()


@slow
def test_worker_processes_and_one_process_publish_the_same_table(data):
    """The baseline version was scored by two worker processes; scoring in the flow's own
    process gives the same rows."""
    _, pooled = published_rows(data)
    result = run_recommend(data)
    _, inline = published_rows(data)
    assert result["n_users"] == pooled["user_id"].nunique()
    keep = ["user_id", "rank", "item_id", "score", "source", "propensity", "model_version"]
    pd.testing.assert_frame_equal(
        pooled[keep].sort_values(["user_id", "rank"]).reset_index(drop=True),
        inline[keep].sort_values(["user_id", "rank"]).reset_index(drop=True),
    )


@slow
def test_a_two_worker_dask_cluster_publishes_the_same_table_as_one_process(data, tmp_path):
    """The recommend flow with `runner=dask` on a 2-worker cluster (processes, as a real
    cluster's workers are) publishes exactly the rows that scoring in one process publishes;
    the shards ran on the cluster's workers, which loaded the model from its files."""
    import distributed
    from distributed.diagnostics.task_stream import TaskStreamPlugin

    from recpipe.flows.recommend import recommend_flow
    from recpipe.params import RecommendParams

    data = Path(shutil.copytree(data, tmp_path / "data"))  # the module's versions stay as they are
    run_recommend(data)  # in the flow's own process
    _, inline = published_rows(data)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        stream = TaskStreamPlugin(cluster.scheduler)  # what the scheduler ran, and where
        cluster.scheduler.add_plugin(stream)
        result = recommend_flow(
            RecommendParams(
                data_dir=str(data), n_shards=3, workers=2, runner="dask",
                dask_address=cluster.scheduler_address,
            )
        )  # fmt: skip
        ran = stream.collect()
    _, on_dask = published_rows(data)
    assert result["n_shards"] == 3
    assert len(ran) == 3  # one task per shard, on the cluster
    assert len({t["worker"] for t in ran}) == 2
    keep = ["user_id", "rank", "item_id", "score", "source", "propensity", "model_version"]
    pd.testing.assert_frame_equal(on_dask[keep], inline[keep])


@slow
def test_failing_shard_keeps_previous_version(data, monkeypatch):
    before = state(data)
    real, calls, parts_seen = scoring.recommend_batch, [], []

    def second_shard_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # shard 0 has written its part file by now
            parts_seen.extend(p.parent.name for p in (data / "recommendations").glob("v=*/part-*"))
            raise RuntimeError("injected: shard 1 crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "recommend_batch", second_shard_fails)
    with pytest.raises(RuntimeError, match="injected: shard 1 crashed"):
        run_recommend(data)
    assert len(calls) == 2
    assert set(parts_seen) - set(before["versions"])  # a partial new version existed
    assert_previous_intact(data, before)


@slow
def test_failing_checks_keep_previous_version(data, monkeypatch):
    before = state(data)
    real = scoring.recommend_batch

    def duplicate_item(*args, **kwargs):
        items, score, src, prop = real(*args, **kwargs)
        items[0, 1] = items[0, 0]  # one user gets the same item twice
        return items, score, src, prop

    monkeypatch.setattr(scoring, "recommend_batch", duplicate_item)
    with pytest.raises(PublishError, match="failed its checks"):
        run_recommend(data)
    assert_previous_intact(data, before)


@slow
def test_every_item_unavailable_is_refused_as_an_empty_table(data, string_ids):
    """No user has an item to recommend: the size check refuses the empty version (before the
    suite, which would fail on the row count) and names both versions' users."""
    from recpipe.flows.recommend import recommend_flow
    from recpipe.params import RecommendParams

    before = state(data)
    excluded = data.parent / "every-item.txt"
    items = pd.read_parquet(string_ids.events, columns=["item_id"])["item_id"].unique()
    excluded.write_text("\n".join(map(str, items)) + "\n")
    n_users = before["rows"]["user_id"].nunique()
    with pytest.raises(PublishError, match=rf"covers 0 users, the current \S+ covers {n_users:,};"):
        recommend_flow(
            RecommendParams(data_dir=str(data), n_shards=2, workers=1,
                            exclude_items_file=str(excluded), allow_shrink=True)
        )  # fmt: skip
    assert_previous_intact(data, before)


class _OsWithFailingReplace:
    """`os` for tasks.recommendation_publishing only, whose replace (the pointer swap) fails."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst):
        raise OSError("injected: pointer swap failed")


@slow
def test_failing_pointer_swap_keeps_previous_version(data, monkeypatch):
    before = state(data)
    monkeypatch.setattr(publishing, "os", _OsWithFailingReplace())
    with pytest.raises(OSError, match="injected: pointer swap failed"):
        run_recommend(data)
    monkeypatch.undo()
    assert_previous_intact(data, before)


@slow
def test_a_view_that_cannot_move_still_publishes_and_ensure_view_repairs_it(data, monkeypatch):
    import duckdb

    before = state(data)
    recs, wh = data / "recommendations", data / "warehouse.duckdb"

    def view_fails(*args, **kwargs):
        raise duckdb.IOException("injected: warehouse held by another process")

    monkeypatch.setattr(publishing, "point_view", view_fails)
    result = run_recommend(data)  # published with a warning: CURRENT is the source of truth
    monkeypatch.undo()
    new = current_version(recs)
    assert new == result["version"] != before["current"]
    assert set(version_dirs(data)) == set(before["versions"]) | {new}
    _, rows = published_rows(data)
    assert (rows.groupby("user_id").size() == K).all()
    assert rows["user_id"].nunique() == before["rows"]["user_id"].nunique()
    pd.testing.assert_frame_equal(view_rows(data), before["rows"])  # stale until repaired
    assert ensure_view(recs, wh) == new
    pd.testing.assert_frame_equal(view_rows(data), rows)


@slow
def test_refresh_without_retraining_scores_new_users(data, string_ids):
    """New users' events after the last one land in the lake; recommend_flow alone serves them."""
    from recpipe.tasks.ingest.ingested_events import ingested_events
    from recpipe.tasks.ingest.lake_cutoffs import last_event_ts

    run_dir = data.parent
    before_version, before_rows = published_rows(data)
    model_version = before_rows["model_version"].iloc[0]
    log = pd.read_parquet(string_ids.events)
    last = last_event_ts(data / "lake")
    counts = log["user_id"].value_counts()
    warm, cold = counts.index[:3].tolist(), counts.index[-2:].tolist()
    frames = []
    for n, donor in enumerate(warm + cold):
        ev = log[log["user_id"] == donor].sort_values("ts").head(30 if donor in warm else 2).copy()
        ev["ts"] = last + timedelta(hours=1 + n) + (ev["ts"] - ev["ts"].min())
        ev["user_id"] = f"unew{n:02d}"
        ev["session_id"] = ev["session_id"] + 10**9
        frames.append(ev)
    new_log = pd.concat(frames, ignore_index=True)
    assert new_log["ts"].min() > last
    path = run_dir / "new_events" / "new-users.parquet"
    path.parent.mkdir(exist_ok=True)
    new_log.to_parquet(path, index=False)
    ingested_events(path, data / "lake", EVENT_TYPES, now=NOW)

    result = run_recommend(data)
    assert result["previous"] == before_version != result["version"]
    assert str(result["model_version"]) == str(model_version)
    version, rows = published_rows(data)
    assert version == result["version"]
    assert (rows["model_version"] == model_version).all()
    new_users = [f"unew{n:02d}" for n in range(5)]
    assert rows["user_id"].nunique() == before_rows["user_id"].nunique() + 5
    mine = rows[rows["user_id"].isin(new_users)]
    assert (mine.groupby("user_id").size() == K).all() and mine["user_id"].nunique() == 5
    listed = mine[mine["source"] != "explore"]
    warm_sources = listed[listed["user_id"].isin(new_users[:3])]["source"]
    cold_sources = listed[listed["user_id"].isin(new_users[3:])]["source"]
    assert (warm_sources == "ranker").mean() > 0.8
    assert (cold_sources == "coldstart").mean() > 0.8


def test_failed_pointer_swap_leaves_no_temp_file(tmp_path, monkeypatch):
    recs = tmp_path / "recommendations"
    recs.mkdir()
    (recs / "CURRENT").write_text("v=previous\n")
    new = write_version(recs, table())
    monkeypatch.setattr(publishing, "os", _OsWithFailingReplace())
    with pytest.raises(OSError):
        published_version(recs, new, tmp_path / "warehouse.duckdb", retention=5)
    assert current_version(recs) == "v=previous"
    assert sorted(p.name for p in recs.iterdir()) == ["CURRENT", new]  # no temp file


# ---------------------------------------------------------------------------------------------
# The checks on hand-made versions


def table(n_users: int = 5, k: int = 4) -> pd.DataFrame:
    return valid_table(range(n_users), k)


BLOCKED = 999


def duplicate_item(df):
    df.loc[1, "item_id"] = df.loc[0, "item_id"]
    return df


def missing_rank(df):
    return df.drop(index=1)


def unavailable_item(df):
    df.loc[0, "item_id"] = BLOCKED
    return df


def extra_row(df):
    extra = df.iloc[[3]].assign(rank=5, item_id=777)
    return pd.concat([df, extra], ignore_index=True)


def missing_user(df):
    return df[df["user_id"] != 4]


def score_order(df):
    df.loc[2, "score"] = 5.0
    return df


def test_checks_pass_a_valid_version(tmp_path):
    result = recommendation_checks(tmp_path, write_version(tmp_path, table()), [BLOCKED], 4, 5)
    assert result.success and result.failures() == []


BETWEEN, PAIR = "expect_column_values_to_be_between", "expect_column_pair_values_to_be_equal"
BAD_VERSIONS = {  # corruption -> the (expectation, column) outcomes that must fail
    duplicate_item: {(PAIR, "n_distinct_items,n_rows")},
    missing_rank: {(BETWEEN, "n_rows"), (PAIR, "max_rank,n_rows")},
    unavailable_item: {(BETWEEN, "n_unavailable")},
    extra_row: {(BETWEEN, "n_rows")},
    missing_user: {("expect_table_row_count_to_equal", None)},
    score_order: {(BETWEEN, "n_order_violations")},
}


@pytest.mark.parametrize("corrupt", list(BAD_VERSIONS), ids=lambda f: f.__name__)
def test_checks_reject_bad_versions(tmp_path, corrupt):
    version = write_version(tmp_path, corrupt(table()))
    result = recommendation_checks(tmp_path, version, [BLOCKED], 4, 5)
    assert not result.success
    assert {(o.expectation, o.column) for o in result.outcomes if not o.success} == BAD_VERSIONS[
        corrupt
    ]


def test_check_failures_name_the_columns_of_pair_expectations(tmp_path):
    version = write_version(tmp_path, duplicate_item(table()))
    failures = recommendation_checks(tmp_path, version, [BLOCKED], 4, 5).failures()
    assert any("n_distinct_items" in f for f in failures), failures


# ---------------------------------------------------------------------------------------------
# Retention


def versions_named(recs: Path, n: int) -> list[str]:
    names = [f"v=202611{day:02d}T000000-{day:06x}" for day in range(1, n + 1)]
    for name in names:
        (recs / name).mkdir(parents=True)
        table().to_parquet(recs / name / "part-0000.parquet", index=False)
    return names


def test_retention_keeps_the_newest_versions_and_current(tmp_path):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    names = versions_named(recs, 5)
    result = published_version(recs, names[-1], wh, retention=3)
    assert result.removed == names[:2]
    assert sorted(p.name for p in recs.glob("v=*")) == names[2:]
    assert len(view_rows(tmp_path)) == len(table())

    # roll back to an old version: it stays however small the retention
    published_version(recs, names[2], wh, retention=1)
    assert current_version(recs) == names[2]
    assert sorted(p.name for p in recs.glob("v=*")) == [names[2], names[4]]
    assert prune_versions(recs, 1) == []
    assert (recs / names[2] / "part-0000.parquet").exists()


def test_retention_orders_versions_made_in_the_same_second(tmp_path, monkeypatch):
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 22, 12, 0, 0, tzinfo=tz)

    suffixes = iter(["ffffff", "000000", "888888"])

    class FakeUUID:
        @property
        def hex(self):
            return next(suffixes) + "0" * 26

    monkeypatch.setattr(publishing, "datetime", FrozenClock)
    monkeypatch.setattr(publishing, "uuid", SimpleNamespace(uuid4=FakeUUID))
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    made = []
    for _ in range(3):
        version = write_version(recs, table())
        published_version(recs, version, wh, retention=2)
        made.append(version)
    assert sorted(p.name for p in recs.glob("v=*")) == sorted(made[1:])


# ---------------------------------------------------------------------------------------------
# Interrupted and killed scoring runs (a real flow process fanning out to worker processes)

FANOUT = """
import os, signal, sys, time
from pathlib import Path
from prefect import flow, task
from recpipe.flows.shard_runners import scored_shards
from recpipe.tasks.serving.recommendation_publishing import pending_version

@task
def slow_shard(out_path: str) -> str:
    Path(out_path).write_bytes(b"partial")
    print("WORKER", os.getpid(), flush=True)
    time.sleep(300)
    return out_path

@flow
def fanout(recs: str) -> None:
    with pending_version(Path(recs)) as (version, path):
        shards = [{"out_path": str(path / f"part-{s:04d}.parquet")} for s in range(4)]
        scored_shards(slow_shard, 2, shards)

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    fanout(sys.argv[1])
"""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields after the command name of /proc/<pid>/stat (state, ppid, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat and int(stat[1]) == pid:
            kids.append(int(entry.name))
    return kids


def _running(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has ended


def _end(proc: subprocess.Popen, children: list[int]) -> None:
    """Kill whatever a failed test left running (only the processes this test started)."""
    for pid in [proc.pid, *children]:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _scoring_fanout(tmp_path: Path):
    """The flow process scoring 4 slow shards on 2 workers, once both workers have started
    (their part files exist); its recommendations directory and its worker pids."""
    from prefect.settings import get_current_settings

    script, recs, log = tmp_path / "fanout.py", tmp_path / "recommendations", tmp_path / "out"
    script.write_text(FANOUT)
    env = {**os.environ, "PREFECT_API_URL": get_current_settings().api.url}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(script), str(recs)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)  # fmt: skip
    started = _until(lambda: log.read_text().count("WORKER") >= 2, 120)
    assert started, log.read_text()[-3000:]
    workers = [int(line.split()[1]) for line in log.read_text().splitlines() if "WORKER" in line]
    assert set(workers) <= set(_children(proc.pid))
    return proc, recs, workers


@slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_flow_process_leaves_no_workers_and_the_next_run_removes_its_version(
    prefect_server, tmp_path
):
    from recpipe.tasks.serving.recommendation_publishing import remove_orphan_versions

    proc, recs, workers = _scoring_fanout(tmp_path)
    children = _children(proc.pid)  # the workers and multiprocessing's resource tracker
    try:
        proc.kill()
        proc.wait()
        assert _until(lambda: not any(_running(pid) for pid in children), 10), [
            pid for pid in children if _running(pid)
        ]
    finally:
        _end(proc, children)
    (left,) = [p.name for p in recs.glob("v=*")]  # no chance to clean up after SIGKILL
    assert remove_orphan_versions(recs) == [left] and not list(recs.glob("v=*"))


@slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_an_interrupted_flow_process_removes_its_partial_version(prefect_server, tmp_path):
    proc, recs, workers = _scoring_fanout(tmp_path)
    children = _children(proc.pid)
    assert list(recs.glob("v=*/part-*"))  # the partial version
    try:
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)  # to the flow process only: its workers are not signalled
        assert proc.wait(timeout=60) != 0  # not after the shards' 300 s
        assert time.monotonic() - started < 30
        assert _until(lambda: not any(_running(pid) for pid in children), 10), [
            pid for pid in children if _running(pid)
        ]  # the workers were stopped; multiprocessing's resource tracker follows its parent
    finally:
        _end(proc, children)
    assert not list(recs.glob("v=*")) and current_version(recs) is None
