"""The publish transaction on hand-made versions (no Prefect): the order check agrees with the
ranking exactly, any data directory path works for CURRENT and the DuckDB view, the view is
re-pointed before CURRENT moves (a view that cannot move is a warning, a pointer that cannot
move rolls the view back), empty or shrunken tables are refused, and versions left by dead
writers are removed while a live writer's version stays."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest
from recs_helpers import COLUMNS, valid_table, write_version

import recpipe.tasks.serving.recommendation_publishing as publishing
from recpipe.errors import PublishError
from recpipe.tasks.models.candidate_scoring import top_k
from recpipe.tasks.serving.recommendation_publishing import (
    OWNER,
    checked_version,
    current_version,
    pending_version,
    published_version,
    recommendation_checks,
    remove_orphan_versions,
)
from recpipe.tasks.serving.user_recommendations import _batch_rows


def view_count(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select count(*) from recommendations").fetchall()[0][0]


# ---------------------------------------------------------------------------------------------
# Ordering and the order check


def ranked_rows(scores: np.ndarray) -> pd.DataFrame:
    """One user's list as scoring builds it: `top_k` over the candidates, then `_batch_rows`."""
    k = len(scores)
    items, vals = top_k(np.zeros(k, dtype=np.int64), np.arange(k), scores, 1, k)
    snap = SimpleNamespace(user_ids=np.array([42]), item_ids=np.arange(k) + 1000)
    cols = _batch_rows(snap, np.array([0]), items, vals, np.zeros((1, k), np.int8),
                       np.full((1, k), np.nan))  # fmt: skip
    df = pd.DataFrame({name: cols[name] for name in ("user_id", "rank", "item_id", "score")})
    df["source"], df["propensity"] = "ranker", np.nan
    df["model_version"], df["run_id"] = "1", "run"
    df["generated_at"] = pd.Timestamp("2026-11-01").as_unit("us")
    return df[COLUMNS]


def test_scores_equal_at_float32_are_ranked_by_item_and_pass_the_check(tmp_path):
    """The reported case: -0.7080134378 and -0.7080133902 are one float32 value."""
    scores = np.linspace(1.0, -0.5, 20)
    scores[17], scores[18] = -0.7080134378, -0.7080133902  # the lower one ranks first on the tie
    rows = ranked_rows(scores)
    pair = rows.set_index("item_id").loc[[1017, 1018], "rank"]
    assert pair[1017] == 19 and pair[1018] == 20  # tie broken by item, not by the float64 value
    assert (rows["score"].diff().dropna() <= 0).all()  # stored scores never increase
    version = write_version(tmp_path, rows)
    assert recommendation_checks(tmp_path, version, [], 20, 1).success

    unrounded = rows.copy()  # what was stored before: the float64 values in float32 order
    unrounded.loc[unrounded["item_id"] == 1017, "score"] = -0.7080134378
    unrounded.loc[unrounded["item_id"] == 1018, "score"] = -0.7080133902
    version = write_version(tmp_path, unrounded)
    result = recommendation_checks(tmp_path, version, [], 20, 1)
    assert not result.success and any("n_order_violations" in f for f in result.failures())


# ---------------------------------------------------------------------------------------------
# Any path


# ("?" is refused in a data directory by name: DuckDB cuts a database path at it)
AWKWARD = ["data dir", 'it\'s "quoted"', "dätä €", "a*b[c]", "50% #1 $HOME `x`"]


@pytest.mark.parametrize("name", AWKWARD)
def test_any_data_directory_path_publishes_and_the_view_follows(tmp_path, name):
    data = tmp_path / name
    recs, wh = data / "recommendations", data / "warehouse.duckdb"
    first = write_version(recs, valid_table(range(5)))
    published_version(recs, first, wh, retention=1)
    assert current_version(recs) == first and view_count(wh) == 20
    second = write_version(recs, valid_table(range(6)))
    result = published_version(recs, second, wh, retention=1)
    assert current_version(recs) == second and view_count(wh) == 24
    assert result.removed == [first] and sorted(p.name for p in recs.glob("v=*")) == [second]
    assert not (recs / second / OWNER).exists()  # published: no owner left


@pytest.mark.parametrize(("name", "sibling"), [("a?b", "aXb"), ("a*b[c]", "a*bc"), ("x[ab]", "xa")])
def test_the_view_reads_its_own_files_when_the_path_would_glob_to_another(tmp_path, name, sibling):
    """DuckDB globs even listed files: `a?b/...` alone would also read `aXb/...`, and `a*b[c]/...`
    would read `a*bc/...` instead of itself. (The warehouse lies outside: DuckDB cannot open a
    database under a `?`.)"""
    recs, wh = tmp_path / name / "recommendations", tmp_path / "warehouse.duckdb"
    version = write_version(recs, valid_table(range(5)))
    other = tmp_path / sibling / "recommendations" / version  # e.g. a copy, since changed
    other.mkdir(parents=True)
    valid_table(range(3)).to_parquet(other / "part-0000.parquet", index=False)
    published_version(recs, version, wh, retention=1)
    assert view_count(wh) == 20  # its own 5 users x 4, not the sibling's 3 x 4 (nor both)


def test_ensure_view_repairs_a_view_left_on_an_old_version(tmp_path):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    old = write_version(recs, valid_table(range(5)))
    published_version(recs, old, wh, retention=5)
    new = write_version(recs, valid_table(range(6)))
    publishing._atomic_write(recs / publishing.POINTER, new + "\n")  # CURRENT moved, view did not
    assert view_count(wh) == 20
    assert publishing.ensure_view(recs, wh) == new and view_count(wh) == 24


def test_a_view_that_cannot_move_is_a_warning_and_the_next_publish_repairs_it(tmp_path, caplog):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    first = write_version(recs, valid_table(range(5)))
    published_version(recs, first, wh, retention=5)
    holder = subprocess.Popen(  # another process with the warehouse open for writing
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            con = duckdb.connect({str(wh)!r})
            print("open", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        second = write_version(recs, valid_table(range(6)))
        with caplog.at_level(logging.WARNING):
            result = published_version(recs, second, wh, retention=5)
        assert result.version == second == current_version(recs)
        assert "could not point the DuckDB view" in caplog.text
    finally:
        holder.kill()
        holder.wait()
    assert view_count(wh) == 20  # still the first version's rows
    third = write_version(recs, valid_table(range(7)))
    published_version(recs, third, wh, retention=5)
    assert view_count(wh) == 28


def test_a_pointer_that_cannot_move_rolls_the_view_back(tmp_path, monkeypatch):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    first = write_version(recs, valid_table(range(5)))
    published_version(recs, first, wh, retention=5)
    second = write_version(recs, valid_table(range(6)))

    def fail(path, text):
        raise OSError("injected: disk full")

    monkeypatch.setattr(publishing, "_atomic_write", fail)
    with pytest.raises(OSError, match="disk full"):
        published_version(recs, second, wh, retention=5)
    assert current_version(recs) == first and view_count(wh) == 20


# ---------------------------------------------------------------------------------------------
# Empty and shrunken tables


def publish_checked(recs: Path, wh: Path, df: pd.DataFrame, allow_shrink: bool = False):
    version = write_version(recs, df)
    n_users = df["user_id"].nunique()
    return checked_version(recs, version, wh, [], 4, n_users, 5, allow_shrink), version


def test_an_empty_version_is_never_published(tmp_path):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    first, _ = publish_checked(recs, wh, valid_table(range(5)))
    for allow in (False, True):
        with pytest.raises(PublishError, match=r"covers 0 users, the current v=\S+ covers 5;"):
            publish_checked(recs, wh, valid_table(range(0)), allow_shrink=allow)
    assert current_version(recs) == first.version and view_count(wh) == 20


def test_a_version_under_half_the_current_users_needs_allow_shrink(tmp_path):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    first, _ = publish_checked(recs, wh, valid_table(range(10)))
    with pytest.raises(PublishError) as err:
        publish_checked(recs, wh, valid_table(range(4)))
    assert f"covers 4 users, the current {first.version} covers 10" in str(err.value)
    assert "--allow-shrink" in str(err.value)
    assert current_version(recs) == first.version
    half, _ = publish_checked(recs, wh, valid_table(range(5)))  # exactly half is fine
    shrunk, _ = publish_checked(recs, wh, valid_table(range(2)), allow_shrink=True)
    assert current_version(recs) == shrunk.version != half.version and view_count(wh) == 8


# ---------------------------------------------------------------------------------------------
# Versions of interrupted and killed runs


def test_an_interrupted_run_removes_its_version(tmp_path):
    recs = tmp_path / "recommendations"
    with pytest.raises(KeyboardInterrupt), pending_version(recs) as (version, path):
        (path / "part-0000.parquet").write_bytes(b"partial")
        raise KeyboardInterrupt
    assert not (recs / version).exists()


def test_versions_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    recs, wh = tmp_path / "recommendations", tmp_path / "warehouse.duckdb"
    current = write_version(recs, valid_table())
    published_version(recs, current, wh, retention=5)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    orphan = write_version(recs, valid_table())
    (recs / orphan / OWNER).write_text(
        f'{{"pid": {dead}, "host": "{publishing.socket.gethostname()}"}}'
    )
    live = write_version(recs, valid_table())  # owned by this (live) process
    elsewhere = write_version(recs, valid_table())
    (recs / elsewhere / OWNER).write_text(f'{{"pid": {dead}, "host": "another-host"}}')
    assert remove_orphan_versions(recs) == [orphan]
    assert sorted(p.name for p in recs.glob("v=*")) == sorted([current, live, elsewhere])
    with pending_version(recs) as (version, _):  # a new run cleans up the same way first
        assert (recs / version / OWNER).exists()


def test_a_failing_block_removes_its_version(tmp_path):
    with pytest.raises(RuntimeError, match="shard crashed"):
        with pending_version(tmp_path) as (version, path):
            (path / "part-0000.parquet").write_bytes(b"partial")
            raise RuntimeError("shard crashed")
    assert not list(tmp_path.glob("v=*"))
    assert current_version(tmp_path) is None


def test_a_version_without_files_is_refused_and_removed(tmp_path):
    with pytest.raises(PublishError, match="covers 0 users"):
        with pending_version(tmp_path) as (version, _):
            checked_version(tmp_path, version, tmp_path / "wh.duckdb", [], 20, 1, 5, False)
    assert not (tmp_path / version).exists() and current_version(tmp_path) is None


def test_a_successful_block_keeps_its_version(tmp_path):
    with pending_version(tmp_path) as (version, path):
        pass
    assert path.is_dir() and path.name == version
