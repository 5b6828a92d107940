"""Writers of one data directory, through the CLI as a person runs it, in a directory whose
path holds a space, quotes, `#`, `%` and non-ASCII letters:

- two ingests and two recommends started together take turns (`--wait`): both finish, the lake
  holds every row exactly once, CURRENT names a complete version that the DuckDB view and
  `recpipe recs` agree with;
- Ctrl-C during scoring (SIGINT to the process group) removes the unpublished version, stops
  every worker and exits 130; the previous version stays current;
- SIGKILL of the command during scoring takes its scoring workers with it, and the next run
  removes the version it left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from recs_helpers import published_rows, view_rows

from recpipe.tasks.ingest.event_lake import read_manifest
from recpipe.tasks.serving.recommendation_publishing import current_version
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow

RECPIPE = Path(sys.executable).parent / "recpipe"
KEY = ["user_id", "item_id", "event_type", "ts"]


def start(*args: str, cwd: Path, stdout=subprocess.PIPE, **kwargs) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECPIPE_", "PREFECT_HOME", "PREFECT_API", "MLFLOW_TRACKING"))
    }
    return subprocess.Popen(
        [str(RECPIPE), *args], cwd=cwd, env=env, stdout=stdout,
        stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: int = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args}:\n{out[-4000:]}"
    return out


def lake_events(lake: Path) -> pd.DataFrame:
    files = read_manifest(lake).files("events")
    return pd.concat([pd.read_parquet(lake / f, columns=KEY) for f in files])


def versions(data: Path) -> set[str]:
    return {p.name for p in (data / "recommendations").glob("v=*")}


def group_members(pgid: int) -> list[str]:
    """Live processes of a process group (their command lines)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")[:100]
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(cmd.decode(errors="replace"))
    return members


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("writers")
    synthetic_shop(root / "shop", "tiny", seed=7)
    log = pd.read_parquet(root / "shop" / "events").sort_values("ts", kind="stable")
    n = len(log)
    parts = {"base": log.iloc[: int(n * 0.8)], "a": log.iloc[int(n * 0.8) : int(n * 0.9)]}
    parts["b"] = log.iloc[int(n * 0.9) :]
    for name, part in parts.items():
        part.to_parquet(root / f"{name}.parquet", index=False)
    data = root / 'it\'s "a" dätä #1 50% dir'
    finish(
        start(
            "run", "--events", str(root / "base.parquet"), "--items",
            str(root / "shop" / "items.parquet"), "--users", str(root / "shop" / "users.parquet"),
            "--data-dir", str(data), cwd=root,
        ),
        timeout=900,
    )  # fmt: skip
    return root, data, log


def test_concurrent_writers_take_turns(shop):
    root, data, log = shop
    first_version, _ = published_rows(data)
    ingests = [
        start("ingest", "--events", str(root / f"{p}.parquet"), "--data-dir", str(data),
              "--wait", "600", cwd=root)
        for p in ("a", "b")
    ]  # fmt: skip
    for proc in ingests:
        finish(proc)
    lake = lake_events(data / "lake")
    assert len(lake) == len(log) and not lake.duplicated().any()  # every row once
    sources = {Path(r.source).name for r in read_manifest(data / "lake").ingests}
    assert {"base.parquet", "a.parquet", "b.parquet"} <= sources

    recommends = [
        start("recommend", "--data-dir", str(data), "--wait", "600", cwd=root) for _ in range(2)
    ]
    outputs = [finish(proc) for proc in recommends]
    assert all("published v=" in out for out in outputs)

    version, rows = published_rows(data)
    assert version != first_version and max(versions(data)) == version
    users = set(pd.read_parquet(root / "shop" / "users.parquet")["user_id"]) | set(log["user_id"])
    assert set(rows["user_id"]) == users and not rows.duplicated(["user_id", "item_id"]).any()
    pd.testing.assert_frame_equal(view_rows(data), rows)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from recommendations").fetchall()[0][0] == len(rows)
    recs = start("recs", str(rows["user_id"].iloc[0]), "--data-dir", str(data), cwd=root)
    assert f"version {version}" in finish(recs)


def scoring_started(data: Path, before: set[str], timeout: float = 180) -> str:
    """The new version's name once its first shard file is written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for version in versions(data) - before:
            if any((data / "recommendations" / version).glob("part-*.parquet")):
                return version
        time.sleep(0.1)
    raise AssertionError("scoring did not start")


def interrupted_recommend(root: Path, data: Path, sig: int, whole_group: bool):
    """A recommend of many small shards, signalled once its first shard is written."""
    before, current = versions(data), current_version(data / "recommendations")
    log = open(root / f"interrupted-{sig}.log", "w")  # noqa: SIM115  (a pipe would stay open in orphans)
    proc = start(
        "recommend", "--data-dir", str(data), "--n-shards", "64", "--workers", "2", cwd=root,
        stdout=log,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    version = scoring_started(data, before)
    if whole_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    return proc, version, before, current


def test_ctrl_c_during_scoring_removes_the_version_and_stops_every_process(shop):
    root, data, _ = shop
    proc, version, before, current = interrupted_recommend(root, data, signal.SIGINT, True)
    proc.wait(timeout=60)
    assert proc.returncode == 130, (root / f"interrupted-{signal.SIGINT}.log").read_text()[-3000:]
    time.sleep(1)
    assert group_members(proc.pid) == []
    assert version not in versions(data) and versions(data) == before
    assert current_version(data / "recommendations") == current


def test_a_killed_command_takes_its_workers_and_the_next_run_removes_its_version(shop):
    root, data, _ = shop
    proc, version, _, current = interrupted_recommend(root, data, signal.SIGKILL, False)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        workers = [m for m in group_members(proc.pid) if "multiprocessing" in m]
        if not workers:
            break
        time.sleep(0.5)
    assert workers == []
    assert version in versions(data) and current_version(data / "recommendations") == current
    for leftover in group_members(proc.pid):  # Prefect's temporary API server outlives it
        assert "uvicorn" in leftover
    if group_members(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)

    out = finish(start("recommend", "--data-dir", str(data), cwd=root))
    assert "published v=" in out and version not in versions(data)
