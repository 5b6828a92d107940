"""A SIGKILLed ingest leaves no unlisted file under lake/events/ (beyond the one documented orphan
directory), and clean-up removes only dead ingests' leftovers, never a live ingest's files.

Real subprocesses are SIGKILLed at each step of the publish phase (the `RECPIPE_TEST_KILL_AT`
hook in `event_lake`) and once while files are being staged; after each kill the lake readers
see is checked, then a following ingest must land every row exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from recpipe.tasks.ingest import event_lake, staging_owners
from recpipe.tasks.ingest.ingested_events import ingested_events

TYPES = ["view", "cart", "purchase"]
NOW = datetime(2027, 1, 1)


@pytest.fixture(scope="module")
def inputs(tiny_shop, tmp_path_factory) -> dict:
    """The tiny shop's events split into 4 files (one with 3 bad rows), its items, a first file."""
    out = tmp_path_factory.mktemp("split")
    events = pd.read_parquet(tiny_shop / "events").sort_values("ts", kind="stable")
    parts = [events.iloc[i::5].reset_index(drop=True) for i in range(5)]
    (out / "first").mkdir()
    (out / "rest").mkdir()
    parts[0].to_parquet(out / "first" / "part-0.parquet")
    bad = parts[1].iloc[:3].assign(event_type="wishlist")
    parts[1] = pd.concat([parts[1], bad], ignore_index=True)  # 3 rows to quarantine (< 1%)
    for k in range(1, 5):
        parts[k].to_parquet(out / "rest" / f"part-{k}.parquet")
    return {
        "first": out / "first",
        "rest": out / "rest",
        "items": tiny_shop / "items.parquet",
        "n_events": len(events),
    }


def ingest(lake: Path, events: Path, items: Path | None = None):
    return ingested_events(events, lake, TYPES, items=items, now=NOW)


def killed_ingest(lake: Path, events: Path, items: Path, kill_at: str) -> None:
    """Run an ingest in a subprocess that SIGKILLs itself at `kill_at` (a publish step)."""
    code = textwrap.dedent(
        f"""
        from datetime import datetime
        from recpipe.tasks.ingest.ingested_events import ingested_events
        ingested_events({str(events)!r}, {str(lake)!r}, {TYPES!r}, items={str(items)!r},
                        now=datetime(2027, 1, 1))
        """
    )
    env = os.environ | {event_lake.KILL_AT_ENV: kill_at}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def parquet_under(lake: Path, kind: str = "events") -> set[str]:
    return {str(p) for p in (lake / kind).rglob("*.parquet")} if (lake / kind).exists() else set()


def read_rows(files: list[str]) -> tuple[int, int]:
    """(rows, distinct contract rows) of a list of event files."""
    if not files:
        return 0, 0
    return duckdb.sql(
        "select count(*), count(distinct (user_id, item_id, event_type, ts, session_id, price, "
        "quantity)) from read_parquet($f, hive_partitioning = false)",
        params={"f": files},
    ).fetchall()[0]


def assert_lake_consistent(lake: Path) -> None:
    """The Parquet files under lake/ are exactly the listed ones, and staging is empty."""
    listed = {
        str(lake / f)
        for r in event_lake.read_manifest(lake).ingests
        for f in r.files + r.quarantine_files
    }
    assert set().union(*(parquet_under(lake, k) for k in event_lake.LAKE_KINDS)) == listed
    assert parquet_under(lake) == set(event_lake.lake_paths(lake, "events"))
    staging = lake / "_staging"
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize(
    "kill_at",
    # each kill costs a subprocess ingest (~5 s); the fast lane keeps the one that leaves the
    # documented orphan directory, the slow lane runs every publish step
    [
        pytest.param("publish", marks=pytest.mark.slow),
        pytest.param("renamed:quarantine", marks=pytest.mark.slow),
        pytest.param("renamed:items", marks=pytest.mark.slow),
        "renamed:events",
        pytest.param("manifest", marks=pytest.mark.slow),
    ],
)
def test_sigkill_during_publish_leaves_only_listed_files(tmp_path, inputs, kill_at):
    lake = tmp_path / "lake"
    ingest(lake, inputs["first"])
    before = event_lake.read_manifest(lake)
    before_rows = read_rows(event_lake.lake_paths(lake, "events"))

    killed_ingest(lake, inputs["rest"], inputs["items"], kill_at)

    after = event_lake.read_manifest(lake)
    listed = set(event_lake.lake_paths(lake, "events"))
    unlisted = parquet_under(lake) - listed
    if kill_at == "manifest":  # killed after the commit point: the ingest happened
        assert len(after.ingests) == len(before.ingests) + 5 and not unlisted
    else:
        assert after == before
        assert read_rows(sorted(listed)) == before_rows  # what readers see is unchanged
        if kill_at == "renamed:events":
            # the one documented orphan: the killed ingest's events directory, no reader lists it
            (owner,) = (lake / "_staging").glob("*.owner")
            ingest_id = owner.name.removesuffix(".owner")
            orphan = lake / event_lake.batch_dir("events", ingest_id)
            assert unlisted and unlisted == {str(p) for p in orphan.rglob("*.parquet")}
            # moved whole: every staged event file of the 4 sources (jobs 1-4; 0 is items)
            assert {Path(f).stem.split("-")[3] for f in unlisted} == {"001", "002", "003", "004"}
            staged = (
                lake / "_staging" / ingest_id / "lake" / event_lake.batch_dir("events", ingest_id)
            )
            assert not staged.exists()
        else:
            assert not unlisted
    # the kill left its staging directory and unlocked owner file behind ...
    assert list((lake / "_staging").glob("*.owner"))

    # ... which the next ingest removes, with any orphan; then it lands every row exactly once
    summary = ingest(lake, inputs["rest"], inputs["items"])
    assert summary.rows_quarantined == (0 if kill_at == "manifest" else 3)
    rows, distinct = read_rows(event_lake.lake_paths(lake, "events"))
    assert rows == distinct == inputs["n_events"]
    assert_lake_consistent(lake)
    assert len(event_lake.lake_paths(lake, "items")) == 1


def assert_killed_state(lake: Path, before: event_lake.LakeManifest) -> None:
    """What any kill may leave: the manifest as it was (or with the whole ingest appended), and
    under lake/events/ only listed files plus at most one directory of a dead ingest."""
    after = event_lake.read_manifest(lake)
    assert after.ingests[: len(before.ingests)] == before.ingests
    unlisted = parquet_under(lake) - set(event_lake.lake_paths(lake, "events"))
    if unlisted:
        assert after == before
        dirs = {Path(f).relative_to(lake / "events").parts[0] for f in unlisted}
        assert len(dirs) == 1
        (ingest_id,) = (d.removeprefix("ingest-") for d in dirs)
        owner = lake / "_staging" / f"{ingest_id}.owner"
        assert owner.exists() and not staging_owners.owner_alive(owner)


@pytest.mark.parametrize(
    "delay",
    [0.0, pytest.param(0.15, marks=pytest.mark.slow), pytest.param(0.5, marks=pytest.mark.slow)],
)
def test_sigkill_while_files_are_staged_leaves_nothing_under_the_lake(tmp_path, inputs, delay):
    lake = tmp_path / "lake"
    ingest(lake, inputs["first"])
    before = event_lake.read_manifest(lake)
    code = textwrap.dedent(
        f"""
        from datetime import datetime
        from recpipe.tasks.ingest.ingested_events import ingested_events
        ingested_events({str(inputs["rest"])!r}, {str(lake)!r}, {TYPES!r},
                        now=datetime(2027, 1, 1))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        # kill `delay` seconds after the first staged file appears (polling, no hook)
        deadline = time.monotonic() + 120
        while not any((lake / "_staging").rglob("*.parquet")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert_killed_state(lake, before)
    if delay == 0.0:  # killed within a few ms of staging its first file: nothing published
        assert event_lake.read_manifest(lake) == before
        assert parquet_under(lake) == set(event_lake.lake_paths(lake, "events"))
    ingest(lake, inputs["rest"])
    rows, distinct = read_rows(event_lake.lake_paths(lake, "events"))
    assert rows == distinct == inputs["n_events"]
    assert_lake_consistent(lake)


def test_exception_after_the_events_rename_leaves_readers_unchanged(tmp_path, inputs, monkeypatch):
    """In-process variant (fast lane): the manifest write fails after the directories moved."""
    lake = tmp_path / "lake"
    ingest(lake, inputs["first"])
    before = event_lake.lake_paths(lake, "events")

    def dies(*_args, **_kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(event_lake, "write_manifest", dies)
    with pytest.raises(KeyboardInterrupt):
        ingest(lake, inputs["rest"])
    monkeypatch.undo()
    assert event_lake.lake_paths(lake, "events") == before
    assert len(parquet_under(lake)) > len(before)  # the orphan directory, listed by no one
    ingest(lake, inputs["rest"])
    rows, distinct = read_rows(event_lake.lake_paths(lake, "events"))
    assert rows == distinct == inputs["n_events"]
    assert_lake_consistent(lake)


# --------------------------------------------------------------------------- clean-up


def fake_in_flight(lake: Path, ingest_id: str) -> list[Path]:
    """Files a live ingest has in flight: staged, and already renamed into lake/events/."""
    staged = lake / "_staging" / ingest_id / "lake" / "events" / "x.parquet"
    moved = lake / event_lake.batch_dir("events", ingest_id) / f"part-{ingest_id}-000.parquet"
    for path in (staged, moved):
        path.parent.mkdir(parents=True, exist_ok=True)
        duckdb.sql("select 1 as x").write_parquet(str(path))
    return [staged, moved]


def hold_claim_in_subprocess(lake: Path, ingest_id: str) -> subprocess.Popen:
    """A sleeping process that owns a staging directory (and files in flight)."""
    code = textwrap.dedent(
        f"""
        import time
        from recpipe.tasks.ingest import staging_owners
        claim = staging_owners.claim_staging({str(lake)!r}, {ingest_id!r})
        print("held", flush=True)
        time.sleep(300)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_cleanup_keeps_live_ingests_and_removes_dead_ones(tmp_path, inputs):
    lake = tmp_path / "lake"
    ingest(lake, inputs["first"])
    mine = "20260101T000000-aaaaaa"  # owned by this test process
    other = "20260101T000000-bbbbbb"  # owned by a sleeping subprocess, killed below
    claim = staging_owners.claim_staging(lake, mine)
    mine_files = fake_in_flight(lake, mine)
    proc = hold_claim_in_subprocess(lake, other)
    try:
        other_files = fake_in_flight(lake, other)
        info = json.loads((lake / "_staging" / f"{other}.owner").read_text())
        assert info["pid"] == proc.pid and info["host"] == socket.gethostname()
        legacy = lake / "_staging" / "20250101T000000-cccccc" / "000" / "events" / "y.parquet"
        legacy.parent.mkdir(parents=True)  # an old-style staging dir with no owner: dead
        legacy.write_bytes(b"x")

        ingest(lake, inputs["rest"])  # its clean-up runs first

        assert all(p.exists() for p in mine_files + other_files)
        assert not (lake / "_staging" / "20250101T000000-cccccc").exists()
        assert staging_owners.live_ingests(lake) == {mine, other}
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # the subprocess is dead now (its owner file stays, unlocked): its files go, mine stay
    event_lake.remove_orphans(lake)
    assert not any(p.exists() for p in other_files)
    assert not (lake / "_staging" / f"{other}.owner").exists()
    assert not (lake / event_lake.batch_dir("events", other)).exists()
    assert all(p.exists() for p in mine_files)
    claim.release()
    assert not claim.staging.exists()
    event_lake.remove_orphans(lake)  # my in-flight events file is an orphan once I am gone
    assert_lake_consistent(lake)
    rows, distinct = read_rows(event_lake.lake_paths(lake, "events"))
    assert rows == distinct == inputs["n_events"]


def test_an_ingest_owns_its_staging_directory_while_it_runs(tmp_path, inputs):
    lake = tmp_path / "lake"
    claim = staging_owners.claim_staging(lake, staging_owners.new_ingest_id())
    try:
        owner = json.loads(claim.owner.read_text())
        assert owner["pid"] == os.getpid() and owner["ingest_id"] == claim.ingest_id
        assert staging_owners.owner_alive(claim.owner)  # flock held by this process's claim
        assert staging_owners.remove_dead_staging(lake) == {claim.ingest_id}
        assert claim.staging.is_dir()
    finally:
        claim.release()
    assert not claim.owner.exists() and not claim.staging.exists()
    assert not staging_owners.owner_alive(claim.owner)
