"""The floors of `recpipe bench`: the least work each heavy stage does, timed alone on the same
data, so a stage is read as a ratio to its floor (which holds on a noisy machine).

- `copy`: the source files (events, items, users) read once and written once as Parquet by
  DuckDB (what an ingest cannot avoid: every row in, every row out);
- `scan`: one DuckDB scan of the lake's events (every column read once);
- `group`: the lake's events grouped by (user, item) into a table of each pair's distinct
  sessions: the grouping and the costly aggregate of `user_items_asof`, alone (DuckDB runs a
  distinct count beside other aggregates in a second pass: with a plain count beside it the
  query takes about twice as long, and a plain count alone about half);
- `csr`: the weighted user x item CSR matrix of the train snapshot: its (user, item, strength)
  pairs fetched from the warehouse as arrays, then scipy's CSR build;
- `als`: an `implicit` ALS fit alone on that matrix, with the run's factors and sweeps;
- `mf_topn`: exact MF top-N for every served user over every item (implicit's threaded top-k);
- `predict`: the served ranker (compiled when the run compiled it) over as many rows as
  scoring ranked, one thread per worker as scoring runs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipe.tasks.features.feature_tables import attach_lake


@dataclass
class Floor:
    name: str
    wall_s: float
    cpu_s: float
    rows: int
    what: str


REPEATS = 3
"""Times the cheap floors (copy, scan, csr: seconds on `medium`) are run; the median run counts.
One run of the copy floor swung from 1.4 to 3.8 s within one sitting, more than the stages."""


def _timed(name: str, what: str, fn, repeats: int = 1) -> Floor:
    runs = []
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        rows = fn()
        runs.append((time.perf_counter() - wall0, time.process_time() - cpu0))
    wall, cpu = sorted(runs)[len(runs) // 2]
    if repeats > 1:
        what = f"{what} (median of {repeats} runs)"
    return Floor(name, wall, cpu, int(rows), what)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")  # floors of seconds: no bar in the logs
    return con


def _lake_floor(name: str, what: str, lake_dir: Path, sql: str) -> Floor:
    """`sql` over the lake's views (a fresh connection each run), timed as floor `name`; the
    first value it returns is the floor's rows."""

    def run() -> int:
        with _connect() as con:
            attach_lake(con, lake_dir)
            return con.sql(sql).fetchall()[0][0]

    return _timed(name, what, run, REPEATS)


def scan_floor(lake_dir: Path) -> Floor:
    return _lake_floor(
        "scan",
        "one DuckDB scan of the lake's events",
        lake_dir,
        "select count(*), max(user_id), max(item_id), max(event_type), max(ts), "
        "max(session_id), max(price), max(quantity) from lake_events",
    )


def copy_floor(sources: list[str], work_dir: Path) -> Floor:
    """`sources` as the ingest was given them: each a file, directory or glob of Parquet or
    CSV files of one kind (events, items, users), copied to one Parquet file of its own."""
    from recpipe.tasks.ingest.ingested_events import source_files

    kinds = [[str(f) for f in source_files(spec)] for spec in sources]
    out = Path(work_dir) / "copy-floor.parquet"

    def copy() -> int:
        n = 0
        with _connect() as con:
            for files in kinds:
                reader = "read_parquet" if files[0].endswith(".parquet") else "read_csv"
                n += con.execute(
                    f"copy (select * from {reader}($files)) to '{out}' (format parquet)",
                    {"files": files},
                ).fetchall()[0][0]
                out.unlink(missing_ok=True)
        return n

    what = "source files (events, items, users) read once and written once as Parquet"
    return _timed("copy", what, copy, REPEATS)


def group_floor(lake_dir: Path) -> Floor:
    return _lake_floor(
        "group",
        "the lake's events grouped by (user, item), distinct sessions counted",
        lake_dir,
        "create temp table pairs as select user_id, item_id, "
        "count(distinct session_id) as n_sessions from lake_events group by user_id, item_id",
    )


def csr_floor(warehouse: Path, snapshot: str = "train") -> tuple[Floor, sp.csr_matrix]:
    out = {}

    def build() -> int:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.sql(
                f"select user_id, item_id, strength::float as s from {snapshot}.user_item_features"
            ).fetchnumpy()
        u, users = pd.factorize(rows["user_id"])
        i, items = pd.factorize(rows["item_id"])
        out["m"] = sp.csr_matrix(
            (rows["s"].astype(np.float32), (u, i)), shape=(len(users), len(items))
        )
        return out["m"].nnz

    what = "the train pairs fetched from the warehouse, factorized, then scipy's CSR build"
    return _timed("csr", what, build, REPEATS), out["m"]


def als_floor(matrix: sp.csr_matrix, factors: int, iterations: int, threads: int) -> Floor:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    from implicit.cpu.als import AlternatingLeastSquares

    def fit() -> int:
        AlternatingLeastSquares(
            factors=factors,
            iterations=iterations,
            random_state=42,
            num_threads=threads,
            calculate_training_loss=False,
        ).fit(matrix, show_progress=False)
        return matrix.nnz

    return _timed("als", f"implicit ALS alone, {factors} factors x {iterations} sweeps", fit)


def mf_topn_floor(mf_path: str, n: int, threads: int) -> Floor:
    from implicit.cpu.topk import topk

    from recpipe.tasks.models.als_embeddings import ALSEmbeddings

    emb = ALSEmbeddings.load(Path(mf_path))
    users = np.ascontiguousarray(emb.user_factors, dtype=np.float32)
    items = np.ascontiguousarray(emb.item_factors, dtype=np.float32)

    def search() -> int:
        for start in range(0, len(users), 50_000):
            topk(items, users[start : start + 50_000], n, num_threads=threads)
        return len(users)

    return _timed("mf_topn", f"exact MF top-{n} of every user over every item", search)


def predict_floor(
    booster_path: str, ranker_lib: str | None, n_rows: int, n_features: int, threads: int
) -> Floor:
    from recpipe.tasks.models.compiled_ranker import ranker_scorer

    scorer = ranker_scorer(booster_path, ranker_lib, threads)
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((min(n_rows, 1_000_000), n_features)).astype(np.float32)
    batch[:, ::3] = np.abs(batch[:, ::3]) * 10  # counts and days: non-negative, spread out

    def predict() -> int:
        done = 0
        while done < n_rows:
            take = min(len(batch), n_rows - done)
            scorer.predict(batch[:take], num_threads=threads)
            done += take
        return done

    kind = "compiled ranker" if ranker_lib else "LightGBM booster"
    return _timed("predict", f"{kind} predict alone over the scored rows", predict)
