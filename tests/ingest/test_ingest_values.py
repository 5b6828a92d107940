"""Values that used to slip through ingest: non-finite numbers, unicode whitespace, loose flags.

Regression tests for the ingest part of the reliability issue: a NaN price passed `price < 0`,
+-inf prices and quantities landed, "\\tcart" was an unknown event type because DuckDB's trim()
strips only spaces, and an items file's `available` of 'out of stock' read as available.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest import TYPES, good_rows, ingest, lake_rows, quarantine

from recpipe.errors import IngestError
from recpipe.tasks.ingest import event_lake


def landed(lake: Path, cols: str = "*") -> pd.DataFrame:
    return duckdb.sql(
        f"select {cols} from read_parquet($f, hive_partitioning = false)",
        params={"f": event_lake.lake_paths(lake, "events")},
    ).df()


def test_non_finite_prices_and_quantities_from_parquet_are_quarantined(tmp_path):
    df = good_rows(500)
    bad = {
        # row -> (price, quantity, reason)
        3: (math.nan, 1.0, "bad_price"),
        4: (math.inf, 1.0, "bad_price"),
        5: (-math.inf, 1.0, "bad_price"),
        6: (2.0, math.nan, "bad_quantity"),
        7: (2.0, math.inf, "bad_quantity"),
        8: (2.0, -math.inf, "bad_quantity"),
    }
    price = df["price"].tolist()
    qty = df["quantity"].astype(float).tolist()
    for i, (p, q, _) in bad.items():
        price[i], qty[i] = p, q
    table = pa.Table.from_pandas(df.drop(columns=["price", "quantity"]), preserve_index=False)
    # pyarrow keeps NaN a float (pandas' to_parquet would have written it as null)
    table = table.append_column("price", pa.array(price, pa.float64(), from_pandas=False))
    table = table.append_column("quantity", pa.array(qty, pa.float64(), from_pandas=False))
    assert pa.compute.is_nan(table["price"]).to_pylist()[3]
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    summary = ingest(path, tmp_path / "lake", max_bad_row_share=0.05)
    assert summary.by_reason == {"bad_price": 3, "bad_quantity": 3}
    q = quarantine(tmp_path / "lake").sort_values("source_row")
    assert q["source_row"].tolist() == [i + 1 for i in sorted(bad)]
    assert q["reason"].tolist() == [bad[i][2] for i in sorted(bad)]
    got = landed(tmp_path / "lake", "price, quantity")
    assert len(got) == 494 == lake_rows(tmp_path / "lake")
    assert duckdb.sql(
        "select count(*) from got where not isfinite(price) or not isfinite(quantity)"
    ).fetchall() == [(0,)]


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "+inf"])
def test_non_finite_text_in_a_csv_is_quarantined(tmp_path, text):
    df = good_rows(300).astype(str)
    df.loc[10, "price"] = text
    df.loc[20, "quantity"] = text
    path = tmp_path / "events.csv"
    df.to_csv(path, index=False)
    summary = ingest(path, tmp_path / "lake", max_bad_row_share=0.05)
    assert summary.by_reason == {"bad_price": 1, "bad_quantity": 1}
    q = quarantine(tmp_path / "lake").set_index("source_row")["reason"].to_dict()
    assert q == {11: "bad_price", 21: "bad_quantity"}
    assert summary.rows_landed == 298


def test_event_types_and_text_ids_lose_any_surrounding_whitespace(tmp_path):
    df = good_rows(200, user_prefix="u").astype(str)
    padded = {
        0: "\tcart",
        1: " cart\u00a0",
        2: "\ncart",
        3: "cart\r\n",
        4: "\u3000Purchase\u2003",
        5: "\ufeffview\u200b",
        6: "\x0bview\x0c",
        7: "\u2028view\u202f",
    }
    for i, value in padded.items():
        df.loc[i, "event_type"] = value
    df.loc[0, "user_id"] = "\tu7\u00a0"  # the same user as "u7"
    df.loc[1, "user_id"] = "\u00a0\t"  # nothing but whitespace: no id
    df.loc[8, "event_type"] = "ca\u00a0rt"  # whitespace inside stays: unknown
    path = tmp_path / "events.csv"
    df.to_csv(path, index=False)
    summary = ingest(path, tmp_path / "lake", max_bad_row_share=0.05)
    assert summary.by_reason == {"missing_user_id": 1, "unknown_event_type": 1}
    assert set(landed(tmp_path / "lake", "event_type")["event_type"]) == set(TYPES)
    first = duckdb.sql(
        "select user_id, event_type from read_parquet($f, hive_partitioning = false) "
        "where session_id = '0' order by ts",
        params={"f": event_lake.lake_paths(tmp_path / "lake", "events")},
    ).fetchall()
    # row 1 (no user) is quarantined; rows 0, 2..6 landed with clean values
    assert first == [
        ("u7", "cart"),
        (df.user_id[2], "cart"),
        (df.user_id[3], "cart"),
        (df.user_id[4], "purchase"),
        (df.user_id[5], "view"),
        (df.user_id[6], "view"),
    ]


def test_whitespace_padded_event_types_in_parquet_land(tmp_path):
    df = good_rows(100)
    df.loc[:3, "event_type"] = ["\tview", "view\u00a0", "\u2009cart\n", " purchase "]
    df.to_parquet(tmp_path / "e.parquet")
    summary = ingest(tmp_path / "e.parquet", tmp_path / "lake")
    assert summary.by_reason == {} and summary.rows_landed == 100
    assert landed(tmp_path / "lake", "event_type")["event_type"].value_counts().to_dict() == (
        df["event_type"].str.strip().value_counts().to_dict()
    )


def items_available(lake: Path) -> dict:
    rows = duckdb.sql(
        "select item_id, available from read_parquet($f)",
        params={"f": event_lake.lake_paths(lake, "items")},
    ).fetchall()
    return dict(rows)


def test_available_words_read_strictly_from_csv(tmp_path):
    words = ["true", "FALSE", " yes ", "No", "1", "0", "y", "N", "t", "f", "\tTrue\u00a0", ""]
    expected = [True, False, True, False, True, False, True, False, True, False, True, True]
    path = tmp_path / "items.csv"
    pd.DataFrame({"item_id": range(len(words)), "available": words}).to_csv(path, index=False)
    ingest(None, tmp_path / "lake", items=path)
    assert items_available(tmp_path / "lake") == dict(enumerate(expected))


def test_available_from_parquet_booleans_integers_and_missing_column(tmp_path):
    lake = tmp_path / "lake"
    t = pa.table({"item_id": [1, 2, 3], "available": pa.array([True, False, None], pa.bool_())})
    pq.write_table(t, tmp_path / "bools.parquet")
    ingest(None, lake, items=tmp_path / "bools.parquet")
    assert items_available(lake) == {1: True, 2: False, 3: True}
    pq.write_table(
        pa.table({"item_id": [1, 2, 3], "available": pa.array([0, 1, None], pa.int8())}),
        tmp_path / "ints.parquet",
    )
    ingest(None, lake, items=tmp_path / "ints.parquet")
    assert items_available(lake) == {1: False, 2: True, 3: True}
    pq.write_table(pa.table({"item_id": [1, 2]}), tmp_path / "none.parquet")
    ingest(None, lake, items=tmp_path / "none.parquet")
    assert items_available(lake) == {1: True, 2: True}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("bad", ["unavailable", "out of stock", "2", "-1", "maybe"])
def test_an_unreadable_available_value_fails_the_items_file(tmp_path, suffix, bad):
    lake = tmp_path / "lake"
    first = tmp_path / "first.parquet"
    pd.DataFrame({"item_id": [1, 2], "available": [True, True]}).to_parquet(first)
    ingest(None, lake, items=first)
    before = event_lake.read_manifest(lake)
    values = ["yes", "no", "yes", bad, "no", bad]
    if bad.lstrip("-").isdigit():
        values = [1, 0, 1, int(bad), 0, int(bad)]  # an integer column: 0/1 only
    df = pd.DataFrame({"item_id": range(6), "available": values})
    path = tmp_path / f"items.{suffix}"
    df.to_csv(path, index=False) if suffix == "csv" else df.to_parquet(path)
    with pytest.raises(IngestError) as err:
        ingest(None, lake, items=path)
    msg = str(err.value)
    assert str(path) in msg and "column available" in msg
    assert f"e.g. {bad!r} in row 4" in msg and "2 value(s)" in msg
    assert event_lake.read_manifest(lake) == before
    assert items_available(lake) == {1: True, 2: True}


def test_available_of_another_type_is_a_file_problem(tmp_path):
    pd.DataFrame({"item_id": [1, 2], "available": [1.0, 0.0]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(IngestError, match="column available has type num; expected true/false"):
        ingest(None, tmp_path / "lake", items=tmp_path / "f.parquet")


def test_a_bad_available_value_past_the_csv_sniffer_sample_is_still_found(tmp_path):
    # DuckDB guesses a CSV column's type from a sample (20,480 rows): `available` is read as
    # text, so a late bad value is reported like any other, not as a failed BOOLEAN conversion
    n = 30_000
    path = tmp_path / "items.csv"
    pd.DataFrame({"item_id": range(n), "Available": ["true"] * (n - 1) + ["sold out"]}).to_csv(
        path, index=False
    )
    with pytest.raises(IngestError, match=r"column available .* e.g. 'sold out' in row 30000"):
        ingest(None, tmp_path / "lake", items=path)


def test_a_value_duckdb_cannot_convert_is_a_file_problem_naming_the_file(tmp_path):
    n = 30_000
    df = good_rows(n).astype(str)
    df.loc[n - 1, "price"] = "twelve"  # past the sniffer's sample: the column reads as DOUBLE
    path = tmp_path / "events.csv"
    df.to_csv(path, index=False)
    with pytest.raises(IngestError, match='converting column "price"') as err:
        ingest(path, tmp_path / "lake")
    assert str(err.value).startswith(f"{path}: ")
    assert not event_lake.read_manifest(tmp_path / "lake").ingests
