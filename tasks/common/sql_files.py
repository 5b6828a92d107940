"""Loading the project's SQL files and running one with only the parameters it names."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import duckdb

SQL_DIR: Traversable = files("recpipe.sql")  # package data: works from a checkout and from a wheel
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def sql_text(name: str) -> str:
    """Text of `sql/<name>.sql` (name like "features/user_features")."""
    path = SQL_DIR.joinpath(*f"{name}.sql".split("/"))
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {name}.sql in the recpipe.sql package ({SQL_DIR})")
    return path.read_text(encoding="utf-8")


def sql_parameters(sql: str) -> set[str]:
    """Named parameters ($name) a SQL text uses, ignoring comments."""
    return set(_PARAM.findall(_COMMENT.sub("", sql)))


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of params the SQL uses; raises naming any parameter it needs but lacks."""
    needed = sql_parameters(sql)
    missing = needed - params.keys()
    if missing:
        raise KeyError(f"SQL needs parameters {sorted(missing)}")
    return {k: params[k] for k in needed}


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None):
    """Run sql/<name>.sql with its parameters; returns the DuckDB result cursor."""
    sql = _COMMENT.sub("", sql_text(name))
    return con.execute(sql, bind(sql, params or {}))


def create_table(
    con: duckdb.DuckDBPyConnection,
    target: str,
    name: str,
    params: dict[str, Any] | None = None,
    temp: bool = False,
) -> int:
    """Materialise sql/<name>.sql as table `target` (identifier from a fixed set); returns rows.

    `target` is interpolated, so callers pass only names built from code constants.
    """
    _check_target(target, "table")
    sql = _COMMENT.sub("", sql_text(name))
    kind = "temp table" if temp else "table"
    con.execute(f"create or replace {kind} {target} as {sql}", bind(sql, params or {}))
    return con.execute(f"select count(*) from {target}").fetchall()[0][0]


def create_view(con: duckdb.DuckDBPyConnection, target: str, name: str, temp: bool = False) -> None:
    """Define sql/<name>.sql as view `target` (identifier from a fixed set), computed when read.

    A view cannot hold parameters: the SQL file must name none (ValueError otherwise).
    """
    _check_target(target, "view")
    sql = _COMMENT.sub("", sql_text(name))
    if sql_parameters(sql):
        raise ValueError(f"{name}.sql names parameters {sorted(sql_parameters(sql))}: not a view")
    kind = "temp view" if temp else "view"
    con.execute(f"create or replace {kind} {target} as {sql}")


def _check_target(target: str, kind: str) -> None:
    """`target` is interpolated into DDL: only plain (schema.)name identifiers pass."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?", target):
        raise ValueError(f"refusing {kind} name {target!r}")
