"""Validated ingestion: every class of bad row, file-level failures, idempotence, crash safety."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from recpipe.errors import IngestError
from recpipe.tasks.ingest import event_lake
from recpipe.tasks.ingest.ingested_events import ingested_events

TYPES = ["view", "cart", "purchase"]
NOW = datetime(2026, 6, 1)


def good_rows(
    n: int = 1000, start: str = "2026-05-01", user_prefix: str | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, n)
    df = pd.DataFrame(
        {
            "user_id": [f"{user_prefix}{u}" for u in users] if user_prefix else users,
            "item_id": rng.integers(0, 80, n),
            "event_type": rng.choice(TYPES, n, p=[0.8, 0.15, 0.05]),
            "ts": pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * 60, unit="s"),
            "session_id": (np.arange(n) // 7).astype(str),
            "price": rng.uniform(1, 50, n).round(2),
            "quantity": 1,
        }
    )
    return df


def ingest(path, lake, **kw):
    kw.setdefault("now", NOW)
    return ingested_events(path, lake, TYPES, **kw)


def lake_rows(lake: Path) -> int:
    files = event_lake.lake_paths(lake, "events")
    return (
        duckdb.sql("select count(*) from read_parquet($f)", params={"f": files}).fetchall()[0][0]
        if files
        else 0
    )


def quarantine(lake: Path) -> pd.DataFrame:
    return duckdb.sql(
        "select * from read_parquet($f)", params={"f": event_lake.lake_paths(lake, "quarantine")}
    ).df()


def test_every_bad_row_class_is_quarantined_with_its_reason(tmp_path):
    df = good_rows().astype(str)  # a CSV export: every field as text
    bad = [
        ("missing_user_id", {"user_id": ""}),
        ("missing_item_id", {"item_id": ""}),
        ("missing_event_type", {"event_type": ""}),
        ("missing_ts", {"ts": ""}),
        ("bad_timestamp", {"ts": "not a time"}),
        ("unknown_event_type", {"event_type": "wishlist"}),
        ("ts_before_min", {"ts": "1970-01-20 16:13:20"}),  # epoch seconds read as ms
        ("ts_in_future", {"ts": "2026-06-02 00:00:00"}),
        ("negative_price", {"price": "-3.5"}),
        ("bad_price", {"price": "twelve"}),
        ("negative_quantity", {"quantity": "-1", "event_type": "view"}),
        ("return", {"quantity": "-2", "event_type": "purchase"}),  # set aside, not bad
        ("bad_quantity", {"quantity": "lots"}),
    ]
    rows = []
    for i, (_, change) in enumerate(bad):
        row = df.iloc[i].to_dict() | {"session_id": f"bad{i}"} | change
        rows.append(row)
    full = pd.concat([df, pd.DataFrame(rows), df.iloc[[5]]], ignore_index=True)
    path = tmp_path / "events.csv"
    full.to_csv(path, index=False)
    summary = ingest(path, tmp_path / "lake", max_bad_row_share=0.05)
    expected = {reason: 1 for reason, _ in bad} | {"duplicate": 1}
    assert summary.by_reason == expected
    q = quarantine(tmp_path / "lake")
    assert sorted(q["reason"]) == sorted(expected)
    assert (q["source_file"] == str(path)).all()
    # the duplicate is the second copy (the last data row); the original landed
    assert q.loc[q.reason == "duplicate", "source_row"].item() == len(full)
    assert summary.rows_landed == len(df) == lake_rows(tmp_path / "lake")
    assert Path(summary.report_path).exists()


@pytest.mark.parametrize(
    "problem",
    ["missing_column", "unreadable", "corrupt_pages", "ts_is_number", "float_ids", "too_many_bad"],
)
def test_file_level_failure_names_the_file_and_publishes_nothing(tmp_path, problem):
    lake = tmp_path / "lake"
    first = tmp_path / "first.parquet"
    good_rows(200).to_parquet(first)
    ingest(first, lake)
    before = event_lake.read_manifest(lake)
    files_before = sorted(p for p in lake.rglob("*.parquet"))
    df = good_rows(500, start="2026-05-10")
    path = tmp_path / f"{problem}.parquet"
    if problem == "missing_column":
        df.drop(columns=["item_id"]).to_parquet(path)
        match = "missing required column.*item_id"
    elif problem == "unreadable":
        path.write_bytes(b"this is not parquet at all")
        match = "cannot read"
    elif problem == "corrupt_pages":
        # a sound footer over broken data pages: the file opens, its rows cannot be read
        df.to_parquet(path, row_group_size=100)
        data = bytearray(path.read_bytes())
        data[4 : len(data) // 2] = bytes(len(data) // 2 - 4)
        path.write_bytes(bytes(data))
        match = "corrupt_pages.parquet: "
    elif problem == "ts_is_number":
        df.assign(ts=df.ts.astype("int64") // 10**9).to_parquet(path)
        match = "column ts has type int"
    elif problem == "float_ids":
        df.assign(user_id=df.user_id.astype(float)).to_parquet(path)
        match = "column user_id has type num"
    else:
        df.loc[:20, "event_type"] = "wishlist"  # 21 of 500 = 4.2% > 1%
        df.to_parquet(path)
        match = r"21 of 500 rows .* above the allowed 1.0%"
    with pytest.raises(IngestError, match=match) as err:
        ingest(path, lake)
    assert str(path) in str(err.value)
    assert event_lake.read_manifest(lake) == before
    assert sorted(p for p in lake.rglob("*.parquet")) == files_before
    assert not (lake / "_staging").exists() or not any((lake / "_staging").iterdir())


def test_reingesting_the_same_file_adds_nothing(tmp_path):
    path = tmp_path / "e.parquet"
    good_rows().to_parquet(path)
    first = ingest(path, tmp_path / "lake")
    second = ingest(path, tmp_path / "lake")
    assert first.rows_landed == 1000 and second.rows_landed == 0
    assert second.files[0].skipped == "already ingested"
    assert lake_rows(tmp_path / "lake") == 1000
    assert len(event_lake.read_manifest(tmp_path / "lake").ingests) == 1


@pytest.mark.parametrize("session_type", ["text", "integer"])
def test_overlapping_export_lands_only_new_rows(tmp_path, session_type):
    df = good_rows()
    if session_type == "integer":  # kept as integers until read out of `checked` as text
        df["session_id"] = df["session_id"].astype("int64")
    df.iloc[:600].to_parquet(tmp_path / "day1.parquet")
    df.iloc[400:].to_parquet(tmp_path / "day2.parquet")  # 200 rows overlap
    ingest(tmp_path / "day1.parquet", tmp_path / "lake")
    s = ingest(tmp_path / "day2.parquet", tmp_path / "lake")  # overlap is not "bad": no failure
    assert s.by_reason == {"already_in_lake": 200}
    assert lake_rows(tmp_path / "lake") == 1000
    files = event_lake.lake_paths(tmp_path / "lake", "events")
    landed = duckdb.sql(
        "select distinct typeof(session_id), count(distinct session_id) from read_parquet($f) "
        "group by all",
        params={"f": files},
    ).fetchall()
    assert landed == [("VARCHAR", df["session_id"].nunique())]


def test_string_and_integer_ids(tmp_path):
    lake = tmp_path / "lake"
    good_rows(300, user_prefix="u").to_parquet(tmp_path / "s.parquet")
    ingest(tmp_path / "s.parquet", lake)
    assert event_lake.read_manifest(lake).id_types == {"user_id": "VARCHAR", "item_id": "BIGINT"}
    # integer user ids join a string lake as strings
    good_rows(100, start="2026-05-20").to_parquet(tmp_path / "i.parquet")
    ingest(tmp_path / "i.parquet", lake)
    users = duckdb.sql(
        "select distinct typeof(user_id) from read_parquet($f)",
        params={"f": event_lake.lake_paths(lake, "events")},
    ).fetchall()
    assert users == [("VARCHAR",)]
    # but string ids cannot enter an integer lake
    lake2 = tmp_path / "lake2"
    ingest(tmp_path / "i.parquet", lake2)
    with pytest.raises(IngestError, match="holds strings but the lake holds integer"):
        ingest(tmp_path / "s.parquet", lake2)


def test_failed_publish_leaves_the_lake_as_it_was(tmp_path, monkeypatch):
    """An ingest interrupted while publishing (after its events directory moved into the lake,
    before the manifest) changes nothing readers see; the next ingest removes the orphan. Real
    SIGKILLs at every publish step: tests/ingest/test_ingest_crash_safety.py."""
    lake = tmp_path / "lake"
    good_rows(300).to_parquet(tmp_path / "a.parquet")
    ingest(tmp_path / "a.parquet", lake)
    before = event_lake.lake_paths(lake, "events")
    good_rows(3000, start="2026-05-12").to_parquet(tmp_path / "b.parquet")
    real_rename = event_lake.os.rename
    moved: list[str] = []

    def rename_then_die(src, dst):
        real_rename(src, dst)
        if "_staging" not in Path(dst).relative_to(lake).parts:  # a move into the lake itself
            moved.append(str(dst))
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(event_lake.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest(tmp_path / "b.parquet", lake)
    monkeypatch.undo()
    assert len(moved) == 1 and Path(moved[0]).parent == lake / "events"  # a directory, not files
    assert event_lake.lake_paths(lake, "events") == before
    assert lake_rows(lake) == 300
    # the next ingest cleans up the orphan and lands the file once
    ingest(tmp_path / "b.parquet", lake)
    assert lake_rows(lake) == 3300
    on_disk = {str(p) for p in (lake / "events").rglob("*.parquet")}
    assert on_disk == set(event_lake.lake_paths(lake, "events"))


def test_items_and_users_files(tmp_path):
    lake = tmp_path / "lake"
    items = pd.DataFrame(
        {"item_id": [1, 2, 3], "category": ["a", "b", "a"], "available": [True, False, True]}
    )
    items.to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"user_id": [1, 2, 99]}).to_parquet(tmp_path / "users.parquet")
    good_rows(100).to_parquet(tmp_path / "e.parquet")
    s = ingest(
        tmp_path / "e.parquet",
        lake,
        items=tmp_path / "items.parquet",
        users=tmp_path / "users.parquet",
    )
    assert {f.kind for f in s.files} == {"events", "items", "users"}
    got = duckdb.sql(
        "select * from read_parquet($f) order by item_id",
        params={"f": event_lake.lake_paths(lake, "items")},
    ).df()
    assert got["available"].tolist() == [True, False, True]
    assert got["created_at"].isna().all()
    dup = pd.DataFrame({"item_id": [1, 1], "category": ["a", "b"]})
    dup.to_parquet(tmp_path / "dup_items.parquet")
    with pytest.raises(IngestError, match="dup_items.parquet.*items file fails"):
        ingest(None, lake, items=tmp_path / "dup_items.parquet")


def test_timezone_aware_timestamps_are_stored_as_utc(tmp_path):
    df = good_rows(10)
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("Europe/Berlin")
    df.to_parquet(tmp_path / "tz.parquet")
    ingest(tmp_path / "tz.parquet", tmp_path / "lake")
    first = duckdb.sql(
        "select min(ts) from read_parquet($f)",
        params={"f": event_lake.lake_paths(tmp_path / "lake", "events")},
    ).fetchall()[0][0]
    assert first == datetime(2026, 5, 1) - timedelta(hours=2)  # CEST is UTC+2


def test_anonymous_rows_and_returns_are_set_aside_without_failing_the_file(tmp_path):
    # an order log as shops export it: a quarter of the rows from guests (no customer id) and
    # some returns (negative quantities); neither is corruption, so the 1% bad-row share holds
    df = good_rows(1000).astype({"user_id": "object", "quantity": "float64"})
    df.loc[df.index % 4 == 0, "user_id"] = None
    returns = df.index[(df.event_type == "purchase") & (df.index % 4 != 0)][:20]
    df.loc[returns, "quantity"] = -1.0
    df.loc[[1, 2], "event_type"] = "wishlist"  # 0.2% really bad rows: within the share
    path = tmp_path / "orders.parquet"
    df.to_parquet(path)
    summary = ingest(path, tmp_path / "lake")
    assert summary.by_reason == {"missing_user_id": 250, "return": 20, "unknown_event_type": 2}
    assert summary.rows_landed == lake_rows(tmp_path / "lake") == 1000 - 272
    assert quarantine(tmp_path / "lake").reason.value_counts().to_dict() == summary.by_reason
    # three really bad rows in 200 are still too many, and the message shows those, not guests
    bad = good_rows(200, start="2026-05-20").astype({"user_id": "object"})
    bad.loc[:99, "user_id"] = None
    bad.loc[100:102, "event_type"] = "wishlist"
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(IngestError, match=r"3 of 200 rows .*row 10[123]: unknown_event_type"):
        ingest(tmp_path / "bad.parquet", tmp_path / "lake")
    # a file where no row has a user id is a mapping mistake: it fails and names the field
    none = good_rows(50, start="2026-06-01").astype({"user_id": "object"})
    none["user_id"] = pd.Series([None] * 50, dtype="string")  # a typed column, every value empty
    none.to_parquet(tmp_path / "none.parquet")
    with pytest.raises(IngestError, match="no row has a user_id"):
        ingest(tmp_path / "none.parquet", tmp_path / "new-lake")
    assert lake_rows(tmp_path / "lake") == 728 and lake_rows(tmp_path / "new-lake") == 0
