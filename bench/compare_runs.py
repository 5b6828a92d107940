"""Compare what two pipeline runs produced, bit for bit: every feature table of the warehouse
and the published recommendation table (ignoring the columns that name the run).

    .venv/bin/python bench/compare_runs.py DATA_DIR_A DATA_DIR_B

Used to show that a change which should not alter behaviour (a refactoring, a new layout) does
not: run `recpipe demo` with the old and the new code into two data directories, then compare.
Exits 1 on the first difference, naming the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

RUN_COLUMNS = {"run_id", "generated_at"}  # differ between any two runs by design


def warehouse_tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.sql("select table_schema, table_name from information_schema.tables "
                        "where table_type = 'BASE TABLE' order by all").fetchall()
        out = {}
        for schema, table in names:
            df = con.sql(f'select * from "{schema}"."{table}"').df()
            out[f"{schema}.{table}"] = df.sort_values(list(df.columns)).reset_index(drop=True)
        return out


def published_table(data_dir: Path) -> pd.DataFrame:
    recs = data_dir / "recommendations"
    version = (recs / "CURRENT").read_text().strip()
    df = pd.read_parquet(sorted((recs / version).glob("part-*.parquet")))
    keep = [c for c in df.columns if c not in RUN_COLUMNS]
    return df[keep].sort_values(["user_id", "rank"]).reset_index(drop=True)


def main(a: Path, b: Path) -> int:
    ta, tb = warehouse_tables(a / "warehouse.duckdb"), warehouse_tables(b / "warehouse.duckdb")
    if set(ta) != set(tb):
        print(f"different tables: only in A {sorted(set(ta) - set(tb))}, only in B {sorted(set(tb) - set(ta))}")
        return 1
    for name in ta:
        try:
            pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True)
        except AssertionError as exc:
            print(f"{name}: differs\n{exc}")
            return 1
        print(f"{name}: identical ({len(ta[name]):,} rows)")
    ra, rb = published_table(a), published_table(b)
    try:
        pd.testing.assert_frame_equal(ra, rb, check_exact=True)
    except AssertionError as exc:
        print(f"published table: differs\n{exc}")
        return 1
    print(f"published table: identical ({len(ra):,} rows, {ra['user_id'].nunique():,} users)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
