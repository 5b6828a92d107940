"""Golden tests for the behaviour-log importers (tasks/log_importers.py).

Expected timestamps were worked out by hand from the epochs in the fixtures, e.g.
1433221332117 ms = 2015-06-02 05:02:12.117 UTC and 1511544070 s = 2017-11-24 17:21:10 UTC
(17494 days after 1970-01-01, plus 17 h 21 min 10 s).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recpipe.errors import InputError
from recpipe.tasks.common.sql_files import sql_text
from recpipe.tasks.ingest.log_importers import (
    IMPORTERS,
    ImportResult,
    generic_csv,
    movielens_ratings,
    retailrocket_events,
    taobao_user_behavior,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"

GENERIC_COLUMNS = {
    "user_id": "customer",
    "item_id": "sku",
    "event_type": "action",
    "ts": "occurred_at",
    "session_id": "visit",
    "price": "unit_price",
    "quantity": "qty",
}
GENERIC_EVENTS = {"impression": "view", "basket_add": "cart", "order": "purchase"}


def rows(path: Path) -> list[tuple]:
    """All rows of a Parquet file as tuples, in file order."""
    table = pq.read_table(path)
    return list(zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True))


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- RetailRocket


def test_retailrocket_golden(tmp_path: Path) -> None:
    result = retailrocket_events(FIXTURES / "retailrocket_events.csv", tmp_path / "out")

    assert result == ImportResult(tmp_path / "out" / "events.parquet", None, 6, None)
    schema = pq.read_schema(result.events_path)
    assert schema.names == ["user_id", "item_id", "event_type", "ts"]
    assert schema.field("user_id").type == pa.int64()
    assert schema.field("item_id").type == pa.int64()
    assert schema.field("event_type").type == pa.string()
    assert schema.field("ts").type == pa.timestamp("us")  # naive: no time zone
    assert rows(result.events_path) == [
        (257597, 355908, "view", datetime(2015, 6, 2, 5, 2, 12, 117000)),
        (992329, 248676, "view", datetime(2015, 6, 2, 5, 50, 14, 164000)),
        (111016, 318965, "cart", datetime(2015, 6, 2, 5, 13, 19, 827000)),
        # 1433223236124 = 1433221332117 + 1904007 ms (31 min 44.007 s)
        (483717, 253185, "purchase", datetime(2015, 6, 2, 5, 33, 56, 124000)),
        (287857, 5206, "view", datetime(2015, 6, 2, 5, 17, 56, 276000)),
        (158090, 10572, "cart", datetime(2015, 6, 2, 5, 12, 35, 914000)),
    ]
    assert not (tmp_path / "out" / "items.parquet").exists()


def test_retailrocket_missing_column(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "events.csv",
        "timestamp,visitorid,event,transactionid\n1433221332117,257597,view,\n",
    )
    with pytest.raises(ValueError, match="missing required column") as excinfo:
        retailrocket_events(source, tmp_path / "out")
    assert str(source) in str(excinfo.value)
    assert "'itemid'" in str(excinfo.value)
    assert not (tmp_path / "out" / "events.parquet").exists()


def test_retailrocket_unknown_event_is_an_error(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433221332118,257597,click,355908,\n",
    )
    out = tmp_path / "out"
    with pytest.raises(ValueError) as excinfo:
        retailrocket_events(source, out)
    message = str(excinfo.value)
    assert str(source) in message
    assert "unknown event value 'click' in column 'event'" in message
    assert not (out / "events.parquet").exists()
    assert list(out.iterdir()) == []  # no partial file left behind


# --------------------------------------------------------------------------- Taobao


def test_taobao_golden(tmp_path: Path) -> None:
    result = taobao_user_behavior(FIXTURES / "taobao_UserBehavior.csv", tmp_path)

    assert result == ImportResult(tmp_path / "events.parquet", tmp_path / "items.parquet", 7, 5)
    assert rows(result.events_path) == [
        (1, 2268318, "view", datetime(2017, 11, 24, 17, 21, 10)),
        (1, 2333346, "view", datetime(2017, 11, 24, 22, 15, 33)),
        (1, 2576651, "view", datetime(2017, 11, 25, 1, 21, 25)),
        (100, 2268318, "cart", datetime(2017, 11, 26, 7, 14, 45)),  # fav -> cart
        (100, 4365585, "cart", datetime(2017, 11, 26, 11, 39, 31)),
        # 1511718491 = 1511544070 + 2 days + 27 min 1 s
        (100, 2576651, "purchase", datetime(2017, 11, 26, 17, 48, 11)),
        (543, 1531036, "view", datetime(2017, 11, 30, 1, 16, 8)),
    ]
    items = pq.read_table(result.items_path)
    assert items.schema.names == ["item_id", "category"]
    assert items.schema.field("item_id").type == pa.int64()
    assert items.schema.field("category").type == pa.string()
    assert rows(result.items_path) == [
        (1531036, "2920476"),
        (2268318, "2520377"),
        (2333346, "2520771"),
        (2576651, "149192"),
        (4365585, "2520377"),
    ]


def test_taobao_missing_column(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "UserBehavior.csv", "1,2268318,2520377,pv\n")
    with pytest.raises(ValueError, match="missing required column") as excinfo:
        taobao_user_behavior(source, tmp_path / "out")
    assert str(source) in str(excinfo.value)
    assert "'ts'" in str(excinfo.value)


def test_taobao_unknown_behavior_is_an_error(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "UserBehavior.csv", "1,2,3,pv,1511544070\n1,2,3,like,1511544071\n"
    )
    with pytest.raises(ValueError, match="unknown event value 'like' in column 'behavior'"):
        taobao_user_behavior(source, tmp_path / "out")


# --------------------------------------------------------------------------- MovieLens


def test_movielens_default_threshold(tmp_path: Path) -> None:
    result = movielens_ratings(FIXTURES / "movielens_ratings.csv", tmp_path)

    assert result == ImportResult(tmp_path / "events.parquet", None, 6, None)
    assert rows(result.events_path) == [
        (1, 1, "purchase", datetime(2000, 7, 30, 18, 45, 3)),  # 4.0 >= 4.0
        (1, 3, "view", datetime(2000, 7, 30, 18, 20, 47)),  # 3.5
        (1, 47, "purchase", datetime(2000, 7, 30, 19, 3, 35)),  # 5.0
        (2, 318, "view", datetime(2015, 10, 24, 19, 27, 15)),  # 3.0
        (2, 1704, "purchase", datetime(2015, 10, 24, 19, 33, 48)),  # 4.5
        (3, 31, "view", datetime(2011, 5, 27, 2, 32, 58)),  # 0.5
    ]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (4.5, ["view", "view", "purchase", "view", "purchase", "view"]),
        (3.0, ["purchase", "purchase", "purchase", "purchase", "purchase", "view"]),
    ],
)
def test_movielens_threshold(tmp_path: Path, threshold: float, expected: list[str]) -> None:
    result = movielens_ratings(FIXTURES / "movielens_ratings.csv", tmp_path, threshold)
    assert pq.read_table(result.events_path).column("event_type").to_pylist() == expected


def test_movielens_missing_column(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "ratings.csv", "userId,movieId,timestamp\n1,1,964982703\n")
    with pytest.raises(ValueError, match=r"ratings\.csv: missing required column\(s\) 'rating'"):
        movielens_ratings(source, tmp_path / "out")


# --------------------------------------------------------------------------- generic


def test_generic_string_ids_and_custom_columns(tmp_path: Path) -> None:
    result = generic_csv(FIXTURES / "generic_events.csv", tmp_path, GENERIC_COLUMNS, GENERIC_EVENTS)

    assert result == ImportResult(tmp_path / "events.parquet", None, 5, None)
    schema = pq.read_schema(result.events_path)
    assert schema.names == [
        "user_id",
        "item_id",
        "event_type",
        "ts",
        "session_id",
        "price",
        "quantity",
    ]
    assert schema.field("user_id").type == pa.string()
    assert schema.field("item_id").type == pa.string()
    assert schema.field("ts").type == pa.timestamp("us")
    assert rows(result.events_path) == [
        ("u-001", "SKU-10", "view", datetime(2024, 3, 1, 10, 0, 0), "s1", 19.99, 1),
        ("u-001", "SKU-10", "cart", datetime(2024, 3, 1, 10, 1, 30), "s1", 19.99, 2),
        ("u-001", "SKU-10", "purchase", datetime(2024, 3, 1, 10, 5, 0), "s1", 19.99, 2),
        ("u-002", "SKU-22", "view", datetime(2024, 3, 2, 8, 15, 0), "s2", 5.5, 1),  # ...Z
        # "007" stays a string; 09:00+02:00 is 07:00 UTC
        ("007", "SKU-22", "purchase", datetime(2024, 3, 2, 7, 0, 0), "s3", 5.5, 3),
    ]


def test_generic_category_writes_items(tmp_path: Path) -> None:
    columns = {**GENERIC_COLUMNS, "category": "dept"}
    result = generic_csv(FIXTURES / "generic_events.csv", tmp_path, columns, GENERIC_EVENTS)
    assert result.items_path == tmp_path / "items.parquet"
    assert result.n_items == 2
    assert rows(result.items_path) == [("SKU-10", "toys"), ("SKU-22", "books")]


def test_generic_epoch_ms_matches_retailrocket(tmp_path: Path) -> None:
    source = FIXTURES / "retailrocket_events.csv"
    expected = retailrocket_events(source, tmp_path / "rr")
    result = generic_csv(
        source,
        tmp_path / "generic",
        {"user_id": "visitorid", "item_id": "itemid", "event_type": "event", "ts": "timestamp"},
        {"view": "view", "addtocart": "cart", "transaction": "purchase"},
        ts_unit="ms",
    )
    assert result.n_events == 6
    assert pq.read_table(result.events_path).equals(pq.read_table(expected.events_path))


def test_generic_epoch_seconds_and_identity_events(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "log.csv",
        "who,what,kind,when\n42,7,view,1511544070\n42,8,purchase,964982703\n",
    )
    result = generic_csv(
        source,
        tmp_path / "out",
        {"user_id": "who", "item_id": "what", "event_type": "kind", "ts": "when"},
        ts_unit="s",
    )
    assert pq.read_schema(result.events_path).field("user_id").type == pa.int64()
    assert rows(result.events_path) == [
        (42, 7, "view", datetime(2017, 11, 24, 17, 21, 10)),
        (42, 8, "purchase", datetime(2000, 7, 30, 18, 45, 3)),
    ]


def test_generic_unmapped_event_values_are_listed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError) as excinfo:
        generic_csv(FIXTURES / "generic_events.csv", out, GENERIC_COLUMNS, {"impression": "view"})
    message = str(excinfo.value)
    assert "generic_events.csv" in message
    assert "unknown event value(s) in column 'action': 'basket_add', 'order'" in message
    assert not (out / "events.parquet").exists()


def test_generic_identity_mapping_rejects_foreign_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown event value\\(s\\) in column 'action'"):
        generic_csv(FIXTURES / "generic_events.csv", tmp_path, GENERIC_COLUMNS)


def test_generic_missing_source_column(tmp_path: Path) -> None:
    columns = {**GENERIC_COLUMNS, "ts": "happened_at"}
    with pytest.raises(ValueError) as excinfo:
        generic_csv(FIXTURES / "generic_events.csv", tmp_path, columns, GENERIC_EVENTS)
    message = str(excinfo.value)
    assert "generic_events.csv: missing required column(s) 'happened_at'" in message


@pytest.mark.parametrize(
    ("columns", "event_map", "ts_unit", "pattern"),
    [
        ({**GENERIC_COLUMNS, "user_id": 'cus"tomer'}, GENERIC_EVENTS, None, "double quote"),
        ({**GENERIC_COLUMNS, "user_id": ""}, GENERIC_EVENTS, None, "non-empty"),
        ({k: v for k, v in GENERIC_COLUMNS.items() if k != "ts"}, None, None, "'ts'"),
        ({**GENERIC_COLUMNS, "rating": "qty"}, GENERIC_EVENTS, None, "unknown contract name"),
        (GENERIC_COLUMNS, {"impression": "like"}, None, "event_map targets"),
        (GENERIC_COLUMNS, GENERIC_EVENTS, "minutes", "ts_unit"),
    ],
)
def test_generic_rejects_bad_arguments(
    tmp_path: Path,
    columns: dict[str, str],
    event_map: dict[str, str] | None,
    ts_unit: str | None,
    pattern: str,
) -> None:
    with pytest.raises(ValueError, match=re.escape(pattern)):
        generic_csv(FIXTURES / "generic_events.csv", tmp_path, columns, event_map, ts_unit)
    assert not (tmp_path / "events.parquet").exists()


# --------------------------------------------------------------------------- misc


def test_missing_source_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        retailrocket_events(tmp_path / "nope.csv", tmp_path)


def test_registry_and_sql_files() -> None:
    assert IMPORTERS == {
        "retailrocket": retailrocket_events,
        "taobao": taobao_user_behavior,
        "movielens": movielens_ratings,
        "generic": generic_csv,
    }
    for name in (
        "retailrocket_events",
        "taobao_user_behavior",
        "taobao_items",
        "movielens_ratings",
    ):
        sql = sql_text(f"importers/{name}")
        assert sql.rstrip().rstrip(";").endswith("select * from final"), name
        assert "read_csv(\n        $source," in sql, name


def test_generic_order_export_without_event_column_and_us_dates(tmp_path: Path) -> None:
    # the shape of a gift-ware shop's order lines: no event column, dates as M/D/YYYY H:MM,
    # a guest order without a customer, a cancellation with a negative quantity
    source = write_csv(
        tmp_path / "orders.csv",
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "536365,85123A,6,12/1/2010 8:26,2.55,17850\n"
        "536366,22633,6,12/1/2010 8:28,1.85,\n"
        "C536379,D,-1,12/11/2010 9:41,27.5,14527\n",
    )
    columns = {
        "user_id": "CustomerID",
        "item_id": "StockCode",
        "ts": "InvoiceDate",
        "session_id": "InvoiceNo",
        "quantity": "Quantity",
    }
    with pytest.raises(InputError, match=r"--ts-format '%m/%d/%Y %H:%M'"):
        generic_csv(source, tmp_path / "out", columns, event_type="purchase")
    result = generic_csv(
        source, tmp_path / "out", columns, event_type="purchase", ts_format="%m/%d/%Y %H:%M"
    )
    assert [r[:4] for r in rows(result.events_path)] == [
        (17850, "85123A", "purchase", datetime(2010, 12, 1, 8, 26)),
        (None, "22633", "purchase", datetime(2010, 12, 1, 8, 28)),
        (14527, "D", "purchase", datetime(2010, 12, 11, 9, 41)),
    ]
    with pytest.raises(InputError, match="event_type must be one of"):
        generic_csv(source, tmp_path / "out", columns, event_type="order")
    with pytest.raises(InputError, match="not both"):
        generic_csv(
            source, tmp_path / "out", columns | {"event_type": "Quantity"}, event_type="purchase"
        )


def test_generic_reads_a_latin1_file_when_told_its_encoding(tmp_path: Path) -> None:
    # the real gift-ware order log is Latin-1 (a pound sign, accented descriptions)
    source = tmp_path / "orders.csv"
    source.write_bytes(
        "user,item,kind,when,note\n7,85123A,purchase,2010-12-01 08:26:00,caf\u00e9 \u00a3\n".encode(
            "latin-1"
        )
    )
    columns = {"user_id": "user", "item_id": "item", "event_type": "kind", "ts": "when"}
    with pytest.raises(InputError, match="--encoding latin-1"):
        generic_csv(source, tmp_path / "out", columns)
    result = generic_csv(source, tmp_path / "out", columns, encoding="latin-1")
    assert [r[:4] for r in rows(result.events_path)] == [
        (7, "85123A", "purchase", datetime(2010, 12, 1, 8, 26))
    ]
    with pytest.raises(InputError, match="encoding must be one of"):
        generic_csv(source, tmp_path / "out", columns, encoding="cp1252")
