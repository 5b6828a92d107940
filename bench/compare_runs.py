"""Compare what two pipeline runs produced, bit for bit: every feature table of the warehouse
and the published recommendation table (ignoring the columns that name the run).

    .venv/bin/python bench/compare_runs.py DATA_DIR_A DATA_DIR_B

Used to show that a change which should not alter behaviour (a refactoring, a new layout) does
not: run `recpipe demo` with the old and the new code into two data directories, then compare.
Exits 1 on the first difference, naming the table. Float columns that DuckDB aggregates in
parallel (sums of decayed weights) may differ in their last bits between any two runs, even of
the same code, as the summation order follows thread scheduling: those are reported with their
largest relative difference and pass when it stays below 1e-12; everything else must be equal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

RUN_COLUMNS = {"run_id", "generated_at"}  # differ between any two runs by design
FLOAT_RTOL = 1e-12


def compare(name: str, a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when equal (floats within FLOAT_RTOL, reported); prints the outcome."""
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        print(f"{name}: identical ({len(a):,} rows)")
        return True
    except AssertionError:
        pass
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=FLOAT_RTOL, atol=0)
    except AssertionError as exc:
        print(f"{name}: differs\n{str(exc)[:2000]}")
        return False
    worst = {
        c: float(np.nanmax(np.abs(a[c] - b[c]) / np.maximum(np.abs(a[c]), 1e-300)))
        for c in a.columns
        if a[c].dtype.kind == "f" and not a[c].equals(b[c])
    }
    print(
        f"{name}: equal up to float summation order ({len(a):,} rows; max relative difference {worst})"
    )
    return True


def warehouse_tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by all"
        ).fetchall()
        out = {}
        for schema, table in names:
            df = con.sql(f'select * from "{schema}"."{table}"').df()
            out[f"{schema}.{table}"] = df.sort_values(list(df.columns)).reset_index(drop=True)
        return out


def published_table(data_dir: Path) -> pd.DataFrame:
    recs = data_dir / "recommendations"
    version = (recs / "CURRENT").read_text().strip()
    df = pd.concat(
        [pd.read_parquet(p) for p in sorted((recs / version).glob("part-*.parquet"))],
        ignore_index=True,
    )
    keep = [c for c in df.columns if c not in RUN_COLUMNS]
    return df[keep].sort_values(["user_id", "rank"]).reset_index(drop=True)


def main(a: Path, b: Path) -> int:
    ta, tb = warehouse_tables(a / "warehouse.duckdb"), warehouse_tables(b / "warehouse.duckdb")
    if set(ta) != set(tb):
        print(
            f"different tables: only in A {sorted(set(ta) - set(tb))}, only in B {sorted(set(tb) - set(ta))}"
        )
        return 1
    same = all([compare(name, ta[name], tb[name]) for name in ta])
    ra, rb = published_table(a), published_table(b)
    same = compare(f"published table ({ra['user_id'].nunique():,} users)", ra, rb) and same
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
