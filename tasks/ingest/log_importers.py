"""Importers from public behaviour-log formats to recpipe's event contract (Parquet).

Every importer writes ``out_dir/events.parquet`` with ``user_id``, ``item_id`` (int64 when the
source ids are integers, strings otherwise), ``event_type`` (``view`` / ``cart`` / ``purchase``)
and ``ts`` (naive timestamp meaning UTC), plus ``out_dir/items.parquet`` (``item_id``,
``category`` as a string) when the source carries categories.

Format decisions:

* RetailRocket ``events.csv``: ``view`` / ``addtocart`` / ``transaction`` ->
  ``view`` / ``cart`` / ``purchase``; ``timestamp`` is unix milliseconds; ``transactionid`` is an
  order id, not a session, so it is dropped.
* Taobao ``UserBehavior.csv`` (no header: user, item, category, behavior, ts in unix seconds):
  ``pv`` / ``cart`` / ``buy`` -> ``view`` / ``cart`` / ``purchase`` and **``fav`` -> ``cart``**
  (saving an item is intent short of buying; the contract has no ``fav`` type). Also writes
  ``items.parquet`` (one row per item, category as a string).
* MovieLens ``ratings.csv``: rating >= ``purchase_threshold`` (default 4.0) -> ``purchase``,
  otherwise ``view``; the rating itself is not kept.
* Generic CSV: a caller-supplied column mapping, optional event-value mapping and epoch unit.

Unknown event values are never dropped: they raise ``ValueError`` naming the file and the value.
SQL lives in ``sql/importers/*.sql``; paths and thresholds reach it only as DuckDB named
parameters, and generic column names only as validated, double-quoted identifiers.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from recpipe.contract import EVENT_TYPES
from recpipe.errors import InputError, MissingInputError
from recpipe.tasks.common.sql_files import sql_text

logger = logging.getLogger(__name__)


EVENTS_FILE = "events.parquet"
ITEMS_FILE = "items.parquet"

REQUIRED_GENERIC_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "event_type", "ts")
OPTIONAL_GENERIC_COLUMNS: tuple[str, ...] = ("session_id", "price", "quantity", "category")
TS_UNIT_FACTORS: dict[str, int] = {"s": 1_000_000, "ms": 1_000, "us": 1}
CSV_ENCODINGS: tuple[str, ...] = ("utf-8", "utf-16", "latin-1")  # what DuckDB's reader decodes

RETAILROCKET_COLUMNS: tuple[str, ...] = ("timestamp", "visitorid", "event", "itemid")
TAOBAO_COLUMNS: tuple[str, ...] = ("user", "item", "category", "behavior", "ts")
MOVIELENS_COLUMNS: tuple[str, ...] = ("userId", "movieId", "rating", "timestamp")

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_UNKNOWN_EVENT = re.compile(r"unknown event value (NULL|'.*')")
_MAX_LISTED_VALUES = 20


@dataclass(frozen=True)
class ImportResult:
    """Where an importer wrote its Parquet files and how many rows each holds."""

    events_path: Path
    items_path: Path | None
    n_events: int
    n_items: int | None


# --------------------------------------------------------------------------- helpers


def _load_sql(name: str) -> str:
    """Read ``sql/importers/<name>.sql``."""
    return sql_text(f"importers/{name}")


def _connect() -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB connection whose session time zone is UTC."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return con


def _check_source(source: Path) -> Path:
    """Resolve ``source`` and fail early when it is not a file."""
    source = Path(source)
    if not source.is_file():
        raise MissingInputError(f"{source}: source file not found")
    return source


def _csv_schema(
    con: duckdb.DuckDBPyConnection, source: Path, header: bool, encoding: str = "utf-8"
) -> dict[str, str]:
    """Column name -> detected DuckDB type of a CSV file, as DuckDB's sniffer sees it."""
    try:
        rows = con.execute(
            "describe select * from read_csv($source, header = $header, encoding = $encoding)",
            {"source": str(source), "header": header, "encoding": encoding},
        ).fetchall()
    except duckdb.Error as exc:
        hint = (
            " A file in another encoding is read with `--encoding latin-1` (or utf-16)."
            if "unicode" in str(exc).lower() and encoding == "utf-8"
            else ""
        )
        raise InputError(f"{source}: could not read as CSV: {exc}{hint}") from exc
    return {str(row[0]): str(row[1]) for row in rows}


def _require_columns(source: Path, present: Sequence[str], required: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the file and every required column it lacks.

    Matching is case-insensitive, like DuckDB's identifier binding.
    """
    have = {name.lower() for name in present}
    missing = [name for name in required if name.lower() not in have]
    if missing:
        raise InputError(
            f"{source}: missing required column(s) {', '.join(repr(m) for m in missing)}"
            f" (found: {', '.join(present) or 'none'})"
        )


def _actual_name(schema: Mapping[str, str], name: str) -> str:
    """The CSV's own spelling of ``name`` (case-insensitive lookup)."""
    for column in schema:
        if column.lower() == name.lower():
            return column
    raise KeyError(name)


def _quote_identifier(name: str) -> str:
    """Double-quote a source column name; reject names that cannot be quoted safely."""
    if not isinstance(name, str) or not name:
        raise InputError(f"invalid column name {name!r}: must be a non-empty string")
    if '"' in name or "\x00" in name:
        raise InputError(f"invalid column name {name!r}: must not contain a double quote")
    return f'"{name}"'


def _copy_parquet(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any], dest: Path
) -> int:
    """``COPY (query) TO dest (FORMAT parquet)`` via a temporary file; return the row count.

    DuckDB errors are re-raised as ``duckdb.Error`` for the caller to translate; the partial
    file is removed and ``dest`` is only replaced on success.
    """
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        row = con.execute(
            f"copy ({query}) to $dest (format parquet)", {**params, "dest": str(partial)}
        ).fetchone()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, dest)
    return int(row[0]) if row else 0


def _import_error(source: Path, exc: duckdb.Error, event_column: str) -> ValueError:
    """Translate a DuckDB failure into a ``ValueError`` that names the file."""
    match = _UNKNOWN_EVENT.search(str(exc))
    if match:
        return ValueError(
            f"{source}: unknown event value {match.group(1)} in column {event_column!r}"
        )
    return ValueError(f"{source}: import failed: {exc}")


def _is_unknown_event(exc: duckdb.Error) -> bool:
    """Whether a DuckDB error comes from the SQL ``error('unknown event value ...')`` guard."""
    return _UNKNOWN_EVENT.search(str(exc)) is not None


def _write(source: Path, dest: Path, sql: str, params: dict[str, Any], event_column: str) -> int:
    """Run one importer query into ``dest`` on a fresh connection; ``ValueError`` on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _connect() as con:
        try:
            return _copy_parquet(con, sql, params, dest)
        except duckdb.Error as exc:
            raise _import_error(source, exc, event_column) from exc


def _strip_final_semicolon(sql: str) -> str:
    """SQL files may end in ``;``; a COPY sub-query may not."""
    return sql.strip().rstrip(";")


# --------------------------------------------------------------------------- importers


def retailrocket_events(source: Path, out_dir: Path) -> ImportResult:
    """Convert RetailRocket ``events.csv`` to ``out_dir/events.parquet``.

    Event values view/addtocart/transaction become view/cart/purchase; ms epochs become UTC.
    """
    source = _check_source(source)
    with _connect() as con:
        schema = _csv_schema(con, source, header=True)
    _require_columns(source, list(schema), RETAILROCKET_COLUMNS)
    events_path = Path(out_dir) / EVENTS_FILE
    sql = _strip_final_semicolon(_load_sql("retailrocket_events"))
    n_events = _write(source, events_path, sql, {"source": str(source)}, "event")
    logger.info("retailrocket: %s -> %s (%d events)", source, events_path, n_events)
    return ImportResult(events_path, None, n_events, None)


def taobao_user_behavior(source: Path, out_dir: Path) -> ImportResult:
    """Convert Taobao ``UserBehavior.csv`` to ``events.parquet`` and ``items.parquet``.

    pv/cart/fav/buy become view/cart/cart/purchase (fav counts as cart); categories are strings.
    """
    source = _check_source(source)
    with _connect() as con:
        schema = _csv_schema(con, source, header=False)
    if len(schema) != len(TAOBAO_COLUMNS):
        missing = TAOBAO_COLUMNS[len(schema) :]
        problem = (
            f"missing required column(s) {', '.join(repr(m) for m in missing)}"
            if missing
            else "unexpected extra column(s)"
        )
        raise InputError(
            f"{source}: {problem}: expected {len(TAOBAO_COLUMNS)} headerless columns"
            f" ({','.join(TAOBAO_COLUMNS)}), found {len(schema)}"
        )
    params = {"source": str(source)}
    events_path = Path(out_dir) / EVENTS_FILE
    items_path = Path(out_dir) / ITEMS_FILE
    events_sql = _strip_final_semicolon(_load_sql("taobao_user_behavior"))
    n_events = _write(source, events_path, events_sql, params, "behavior")
    items_sql = _strip_final_semicolon(_load_sql("taobao_items"))
    n_items = _write(source, items_path, items_sql, params, "behavior")
    logger.info(
        "taobao: %s -> %s (%d events), %s (%d items)",
        source,
        events_path,
        n_events,
        items_path,
        n_items,
    )
    return ImportResult(events_path, items_path, n_events, n_items)


def movielens_ratings(source: Path, out_dir: Path, purchase_threshold: float = 4.0) -> ImportResult:
    """Convert MovieLens ``ratings.csv`` to ``out_dir/events.parquet``.

    Ratings >= ``purchase_threshold`` become ``purchase``, lower ones ``view``.
    """
    if isinstance(purchase_threshold, bool) or not isinstance(purchase_threshold, int | float):
        raise InputError(f"purchase_threshold must be a number, got {purchase_threshold!r}")
    if not math.isfinite(purchase_threshold):
        raise InputError(f"purchase_threshold must be finite, got {purchase_threshold!r}")
    source = _check_source(source)
    with _connect() as con:
        schema = _csv_schema(con, source, header=True)
    _require_columns(source, list(schema), MOVIELENS_COLUMNS)
    events_path = Path(out_dir) / EVENTS_FILE
    sql = _strip_final_semicolon(_load_sql("movielens_ratings"))
    params = {"source": str(source), "purchase_threshold": float(purchase_threshold)}
    n_events = _write(source, events_path, sql, params, "rating")
    logger.info(
        "movielens: %s -> %s (%d events, purchase at rating >= %s)",
        source,
        events_path,
        n_events,
        purchase_threshold,
    )
    return ImportResult(events_path, None, n_events, None)


def _validate_generic_columns(
    columns: Mapping[str, str], required: tuple[str, ...] = REQUIRED_GENERIC_COLUMNS
) -> dict[str, str]:
    """Check the contract -> source column mapping; return it with quoted source names."""
    if not isinstance(columns, Mapping):
        raise InputError("columns must map contract column names to source column names")
    allowed = set(REQUIRED_GENERIC_COLUMNS) | set(OPTIONAL_GENERIC_COLUMNS)
    unknown = sorted(str(key) for key in columns if key not in allowed)
    if unknown:
        raise InputError(
            f"columns has unknown contract name(s) {', '.join(repr(u) for u in unknown)};"
            f" allowed: {', '.join(REQUIRED_GENERIC_COLUMNS + OPTIONAL_GENERIC_COLUMNS)}"
        )
    # a required column not mapped is read from the source column of the same name
    columns = {key: key for key in required} | dict(columns)
    return {key: _quote_identifier(value) for key, value in columns.items()}


def _validate_event_map(event_map: Mapping[str, str] | None) -> tuple[list[str], list[str]]:
    """Source event values and their contract event types (identity when ``event_map`` is None)."""
    if event_map is None:
        return list(EVENT_TYPES), list(EVENT_TYPES)
    if not isinstance(event_map, Mapping) or not event_map:
        raise InputError("event_map must be a non-empty mapping of source value -> event type")
    bad = {str(k): v for k, v in event_map.items() if v not in EVENT_TYPES}
    if bad:
        raise InputError(f"event_map targets must be one of {', '.join(EVENT_TYPES)}; got {bad!r}")
    return [str(key) for key in event_map], [str(value) for value in event_map.values()]


def _id_expression(quoted: str, source_type: str) -> str:
    """int64 for integer source columns, VARCHAR for everything else."""
    target = "bigint" if source_type in _INTEGER_TYPES else "varchar"
    return f"cast({quoted} as {target})"


def generic_csv(
    source: Path,
    out_dir: Path,
    columns: dict[str, str],
    event_map: dict[str, str] | None = None,
    ts_unit: str | None = None,
    event_type: str | None = None,
    ts_format: str | None = None,
    encoding: str = "utf-8",
) -> ImportResult:
    """Convert a headered CSV described by ``columns`` (contract name -> source column; the
    required columns default to source columns of their own names).

    ``event_map`` maps source event values to view/cart/purchase (identity when None); unknown
    values raise. ``event_type`` instead makes every row that event type, for a log without an
    event column (an order export: ``purchase``). ``ts_format`` reads text timestamps with a
    strptime format (``%m/%d/%Y %H:%M`` for ``12/1/2010 8:26``). ``encoding`` is the file's
    character set: utf-8 (default), utf-16 or latin-1. ``ts_unit`` None parses timestamps (offsets converted to UTC, naive values
    taken as UTC); ``"s"``/``"ms"``/``"us"`` read unix epochs. A ``category`` mapping also
    writes ``items.parquet``.
    """
    required = REQUIRED_GENERIC_COLUMNS
    if event_type is not None:
        if event_type not in EVENT_TYPES:
            raise InputError(
                f"event_type must be one of {', '.join(EVENT_TYPES)}; got {event_type!r}"
            )
        if event_map is not None or "event_type" in columns:
            raise InputError(
                "give either one event_type for every row or an event column, not both"
            )
        required = tuple(c for c in REQUIRED_GENERIC_COLUMNS if c != "event_type")
    quoted = _validate_generic_columns(columns, required)
    columns = {key: key for key in required} | dict(columns)
    from_values, to_values = _validate_event_map(event_map)
    if encoding not in CSV_ENCODINGS:
        raise InputError(f"encoding must be one of {', '.join(CSV_ENCODINGS)}, got {encoding!r}")
    if ts_unit is not None and ts_format is not None:
        raise InputError("give ts_unit (epoch numbers) or ts_format (text dates), not both")
    if ts_unit is not None and ts_unit not in TS_UNIT_FACTORS:
        raise InputError(
            f"ts_unit must be None or one of {', '.join(TS_UNIT_FACTORS)}, got {ts_unit!r}"
        )
    source = _check_source(source)
    with _connect() as con:
        schema = _csv_schema(con, source, header=True, encoding=encoding)
    _require_columns(source, list(schema), [columns[key] for key in quoted])
    types = {key: schema[_actual_name(schema, columns[key])] for key in quoted}

    select = [
        f"{_id_expression(quoted['user_id'], types['user_id'])} as user_id",
        f"{_id_expression(quoted['item_id'], types['item_id'])} as item_id",
    ]
    params: dict[str, Any] = {"source": str(source), "encoding": encoding}
    if event_type is not None:
        select.append("cast($event_type as varchar) as event_type")
        params["event_type"] = event_type
    else:
        event_value = f"cast({quoted['event_type']} as varchar)"
        position = f"list_position($event_from, {event_value})"
        select.append(
            f"case when {position} is null"
            f" then error('unknown event value ' || coalesce('''' || {event_value} || '''', 'NULL'))"
            f" else $event_to[{position}] end as event_type"
        )
        params |= {"event_from": from_values, "event_to": to_values}
    if ts_format is not None:
        ts_expr = f"strptime(cast({quoted['ts']} as varchar), $ts_format)"
        params["ts_format"] = ts_format
    elif ts_unit is None:
        ts_expr = f"cast(cast({quoted['ts']} as timestamptz) as timestamp)"
    else:
        ts_expr = (
            f"make_timestamp(cast(round(cast({quoted['ts']} as double) * $ts_factor) as bigint))"
        )
        params["ts_factor"] = TS_UNIT_FACTORS[ts_unit]
    select.append(f"{ts_expr} as ts")
    if "session_id" in quoted:
        select.append(f"{_id_expression(quoted['session_id'], types['session_id'])} as session_id")
    if "price" in quoted:
        select.append(f"cast({quoted['price']} as double) as price")
    if "quantity" in quoted:
        select.append(f"cast({quoted['quantity']} as bigint) as quantity")

    source_cte = "source as (select * from read_csv($source, header = true, encoding = $encoding))"
    events_sql = (
        f"with {source_cte},\n"
        f"final as (select {', '.join(select)} from source)\n"
        "select * from final"
    )
    events_path = Path(out_dir) / EVENTS_FILE
    events_path.parent.mkdir(parents=True, exist_ok=True)
    with _connect() as con:
        try:
            n_events = _copy_parquet(con, events_sql, params, events_path)
        except duckdb.Error as exc:
            if not _is_unknown_event(exc):
                hint = (
                    " Dates written another way are read with a strptime format, e.g."
                    " `--ts-format '%m/%d/%Y %H:%M'` for 12/1/2010 8:26."
                    if "timestamp" in str(exc) and ts_format is None and ts_unit is None
                    else ""
                )
                raise InputError(f"{source}: import failed: {exc}{hint}") from exc
            unknown = _unknown_event_values(
                con, source, quoted["event_type"], from_values, encoding
            )
            raise InputError(
                f"{source}: unknown event value(s) in column {columns['event_type']!r}:"
                f" {', '.join(unknown)} (mapped values: {', '.join(map(repr, from_values))})"
            ) from exc

    items_path: Path | None = None
    n_items: int | None = None
    if "category" in quoted:
        item_expr = _id_expression(quoted["item_id"], types["item_id"])
        category_expr = f"cast({quoted['category']} as varchar)"
        items_sql = (
            f"with {source_cte},\n"
            f"final as (select {item_expr} as item_id,"
            f" first({category_expr} order by {ts_expr} desc, {category_expr} desc) as category"
            f" from source group by {item_expr} order by item_id)\n"
            "select * from final"
        )
        items_path = Path(out_dir) / ITEMS_FILE
        items_params = {
            key: params[key]
            for key in ("source", "ts_factor", "ts_format", "encoding")
            if key in params
        }
        n_items = _write(
            source, items_path, items_sql, items_params, columns.get("event_type", "event_type")
        )
    logger.info("generic: %s -> %s (%d events)", source, events_path, n_events)
    return ImportResult(events_path, items_path, n_events, n_items)


def _unknown_event_values(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    quoted_column: str,
    known: list[str],
    encoding: str = "utf-8",
) -> list[str]:
    """Distinct event values of ``source`` not in ``known`` (repr'd; NULL for empty ones)."""
    value = f"cast({quoted_column} as varchar)"
    query = (
        f"select distinct {value} as value from read_csv($source, header = true,"
        " encoding = $encoding)"
        f" where list_position($known, {value}) is null order by value nulls first"
    )
    rows = con.execute(
        query, {"source": str(source), "known": known, "encoding": encoding}
    ).fetchmany(_MAX_LISTED_VALUES + 1)
    values = ["NULL" if row[0] is None else repr(row[0]) for row in rows]
    if len(values) > _MAX_LISTED_VALUES:
        values = values[:_MAX_LISTED_VALUES] + ["..."]
    return values


IMPORTERS: dict[str, Callable[..., ImportResult]] = {
    "retailrocket": retailrocket_events,
    "taobao": taobao_user_behavior,
    "movielens": movielens_ratings,
    "generic": generic_csv,
}
