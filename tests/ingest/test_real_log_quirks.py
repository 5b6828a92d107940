"""What real shop logs look like and ingest must accept as they are: old dates, exact repeats
(an order listing one product on two lines), and the epoch-unit mistakes it must name."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from recpipe.errors import IngestError
from recpipe.tasks.ingest import event_lake
from recpipe.tasks.ingest.ingested_events import ingested_events
from recpipe.tasks.ingest.log_importers import generic_csv

TYPES = ["view", "cart", "purchase"]
NOW = pd.Timestamp("2026-06-01").to_pydatetime()


def purchases(n: int, start: str, step: str = "6h") -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 40, n),
            "item_id": rng.integers(0, 90, n),
            "event_type": "purchase",
            "ts": pd.date_range(start, periods=n, freq=step),
            "quantity": rng.integers(1, 4, n),
        }
    )


def lake_events(lake) -> pd.DataFrame:
    files = event_lake.lake_paths(lake, "events")
    return duckdb.sql("select * from read_parquet($f)", params={"f": files}).df()


def test_a_log_from_the_late_1990s_lands_every_row(tmp_path):
    log = purchases(5000, "1995-01-01")
    assert log["ts"].max() < pd.Timestamp("1999-01-01")
    path = tmp_path / "old.parquet"
    log.to_parquet(path, index=False)
    summary = ingested_events(path, tmp_path / "lake", TYPES, now=NOW)
    assert summary.rows_landed == len(log) and summary.by_reason == {}
    assert len(lake_events(tmp_path / "lake")) == len(log)


@pytest.mark.parametrize("sessions", ["none", "integer"])
def test_exact_repeats_collapse_into_one_event_with_their_quantity_summed(tmp_path, sessions):
    log = purchases(2000, "2024-01-01")
    if sessions == "integer":  # the CSV's session ids read as BIGINT, landed as text
        log["session_id"] = np.arange(len(log)) // 3
    repeats = log.sample(frac=0.05, random_state=1)  # 5% repeat another row exactly
    path = tmp_path / "orders.csv"
    pd.concat([log, repeats]).sort_index(kind="stable").to_csv(path, index=False)
    summary = ingested_events(path, tmp_path / "lake", TYPES, now=NOW)  # 1% allowed bad rows
    assert summary.by_reason == {"duplicate": len(repeats)}
    assert summary.rows_landed == len(log)
    landed = lake_events(tmp_path / "lake").set_index(["user_id", "item_id", "ts"])
    source = log.set_index(["user_id", "item_id", "ts"])
    expected = source["quantity"] + source.index.isin(repeats.set_index(
        ["user_id", "item_id", "ts"]).index) * source["quantity"]  # fmt: skip
    pd.testing.assert_series_equal(
        landed["quantity"].sort_index().astype("int64"),
        expected.sort_index().astype("int64"),
        check_names=False,
    )
    assert "duplicate" in summary.markdown()
    if sessions == "integer":
        assert landed["session_id"].tolist() == [str(v) for v in landed["session_id"]]
        assert sorted(set(landed["session_id"].astype(int))) == sorted(set(log["session_id"]))


def test_one_order_line_split_over_rows_of_other_quantities_lands_once(tmp_path):
    # the real gift-ware order log has lines equal but for quantity (1, 1 and 2 of one product
    # on one invoice): collapsing only exact repeats left two identical rows of quantity 2, and
    # the events suite then failed the file; every such group now lands as one summed event
    log = purchases(500, "2024-01-01").assign(session_id="inv", price=2.5)
    split = log.iloc[:30].copy()
    extra = pd.concat([split.assign(quantity=1), split.assign(quantity=2)])
    refund = log.iloc[[40]].assign(quantity=-1)  # a return of the same line: set aside alone
    path = tmp_path / "orders.parquet"
    pd.concat([log.assign(quantity=lambda d: d.quantity.where(d.index >= 30, 1)), extra, refund])\
        .to_parquet(path, index=False)  # fmt: skip
    summary = ingested_events(path, tmp_path / "lake", TYPES, now=NOW)
    assert summary.by_reason == {"duplicate": 60, "return": 1}
    landed = lake_events(tmp_path / "lake")
    assert len(landed) == summary.rows_landed == 500
    assert not landed.duplicated(["user_id", "item_id", "ts"]).any()
    by_key = landed.set_index(["user_id", "item_id", "ts"])["quantity"]
    key = log.set_index(["user_id", "item_id", "ts"]).index
    assert (by_key.loc[key[:30]] == 4).all()  # 1 + 1 + 2
    assert (by_key.loc[key[30:]].values == log.quantity.iloc[30:].values).all()


@pytest.mark.parametrize(
    ("unit_read", "values", "fix"),
    [
        ("s", [1_700_000_000_000, 1_700_000_360_000], "--ts-unit ms"),  # ms read as seconds
        ("ms", [1_700_000_000, 1_700_000_360], "--ts-unit s"),  # seconds read as ms
    ],
)
def test_an_epoch_unit_mistake_fails_naming_the_unit(tmp_path, unit_read, values, fix):
    raw = tmp_path / "raw.csv"
    pd.DataFrame(
        {"user_id": [1, 2], "item_id": [5, 6], "event_type": ["view", "purchase"], "ts": values}
    ).to_csv(raw, index=False)
    imported = generic_csv(raw, tmp_path / "imported", {}, ts_unit=unit_read)
    with pytest.raises(IngestError) as err:
        ingested_events(imported.events_path, tmp_path / "lake", TYPES, now=NOW)
    assert fix in str(err.value) and "epoch" in str(err.value)
    assert not event_lake.read_manifest(tmp_path / "lake").ingests
