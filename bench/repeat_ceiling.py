"""How far above buy-again a ranker over the user's own purchases can get on a repeat-purchase log.

A check of the real-log target, outside recpipe: a LightGBM model trained directly on the log
(no candidates, no pipeline) over every (user, item the user bought before) pair, with the
repeat-purchase features a grocery model would use (counts in 7/30/90 days and overall, recency,
basket share, the user's own gap for the item and how far into it they are, item popularity,
item repeat rate; optionally trend and an EASE score), labels "bought in the next H days" from
several past cutoffs, and scored at the test cutoff exactly as `real_logs.py` scores recpipe
(NDCG@10, binary gains, over every user who purchased in the test window).

    .venv/bin/python bench/repeat_ceiling.py --events WORK/completejourney/imported/events.parquet \
        [--horizon 31] [--windows 6] [--objective lambdarank|binary] [--ease]

`WORK` is `real_logs.py`'s work directory (its import of Complete Journey). About 2.5 min on two
cores (6 min with `--ease`). Nothing here is used by recpipe.
"""

from __future__ import annotations

import argparse

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

FEATURES = [
    "n", "nbi", "n7", "n30", "n90", "dsl", "dsf", "q", "bshare", "nb", "nb30", "udsl", "udsf",
    "ipop", "ipop30", "iusers", "irep", "gap", "gapratio",
]  # fmt: skip
EXTRA = ["ipop7", "itrend", "ease"]
PAIRS_SQL = """
with h as (select * from ev where ts < $c),
ub as (
    select user_id, count(distinct session_id) as nb,
        count(distinct session_id) filter (where ts >= $c - interval 30 day) as nb30,
        max(ts) as ulast, min(ts) as ufirst
    from h group by 1
),
ip as (
    select item_id, count(*) as ipop,
        count(*) filter (where ts >= $c - interval 30 day) as ipop30,
        count(*) filter (where ts >= $c - interval 7 day) as ipop7,
        count(distinct user_id) as iusers
    from h group by 1
),
ui as (
    select user_id, item_id, count(*) as n, count(distinct session_id) as nbi,
        count(*) filter (where ts >= $c - interval 7 day) as n7,
        count(*) filter (where ts >= $c - interval 30 day) as n30,
        count(*) filter (where ts >= $c - interval 90 day) as n90,
        date_diff('hour', max(ts), $c) / 24.0 as dsl,
        date_diff('hour', min(ts), $c) / 24.0 as dsf,
        sum(quantity) as q
    from h group by 1, 2
),
rep as (select item_id, avg((n > 1)::int) as irep from ui group by 1)
select ui.*, nbi / nb as bshare, nb, nb30,
    date_diff('hour', ulast, $c) / 24.0 as udsl, date_diff('hour', ufirst, $c) / 24.0 as udsf,
    ipop, ipop30, iusers, irep, ipop7, ipop7 / (ipop30 + 1) as itrend,
    case when nbi > 1 then (dsf - dsl) / (nbi - 1) end as gap,
    case when nbi > 1 then dsl / ((dsf - dsl) / (nbi - 1) + 1) end as gapratio
from ui join ub using (user_id) join ip using (item_id) join rep using (item_id)
"""


def ease_scores(con, cutoff, pairs: pd.DataFrame, n_items: int = 8000, lam: float = 200.0):
    """EASE (log1p counts, the `n_items` most popular items) score of each (user, item) pair."""
    h = con.execute(
        "select user_id, item_id, ln(1 + count(*)) as v from ev where ts < $c group by 1, 2",
        {"c": cutoff},
    ).df()
    top = h.groupby("item_id").size().sort_values(ascending=False).index[:n_items]
    h = h[h.item_id.isin(top)]
    uix = {u: k for k, u in enumerate(h.user_id.unique())}
    iix = {i: k for k, i in enumerate(top)}
    x = np.zeros((len(uix), len(iix)), np.float32)
    x[h.user_id.map(uix).values, h.item_id.map(iix).values] = h.v.values
    g = (x.T @ x).astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0
    s = x @ b.astype(np.float32)
    ui, ii = pairs.user_id.map(uix), pairs.item_id.map(iix)
    ok = (ui.notna() & ii.notna()).values
    out = np.full(len(pairs), np.nan, np.float32)
    out[ok] = s[ui[ok].astype(int).values, ii[ok].astype(int).values]
    return out


def ndcg_at_10(scored: pd.DataFrame, col: str, relevant: pd.Series) -> float:
    top = scored.sort_values(["user_id", col], ascending=[True, False])
    lists = top.groupby("user_id")["item_id"].apply(lambda s: list(s[:10]))
    out = []
    for user, rel in relevant.items():
        dcg = sum(1 / np.log2(j + 2) for j, i in enumerate(lists.get(user, [])) if i in rel)
        out.append(dcg / sum(1 / np.log2(j + 2) for j in range(min(len(rel), 10))))
    return float(np.mean(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--cutoff", default="2017-12-01")
    ap.add_argument("--test-days", type=int, default=31)
    ap.add_argument("--horizon", type=int, default=31, help="label window of the training cutoffs")
    ap.add_argument("--windows", type=int, default=6, help="training cutoffs, one horizon apart")
    ap.add_argument("--objective", choices=("lambdarank", "binary"), default="lambdarank")
    ap.add_argument("--ease", action="store_true", help="add trend and an EASE score")
    a = ap.parse_args()
    con = duckdb.connect()
    con.execute(
        "create table ev as select user_id, item_id, ts, session_id, quantity "
        "from read_parquet($p) where event_type = 'purchase'",
        {"p": a.events},
    )
    cols = FEATURES + (EXTRA if a.ease else [])
    test_cut = pd.Timestamp(a.cutoff)

    def pairs(cutoff):
        f = con.execute(PAIRS_SQL, {"c": cutoff}).df()
        if a.ease:
            f["ease"] = ease_scores(con, cutoff, f)
        return f

    train = []
    for k in range(1, a.windows + 1):
        cut = test_cut - pd.Timedelta(days=a.horizon * k)
        labels = con.execute(
            "select distinct user_id, item_id, 1 as y from ev "
            "where ts >= $c and ts < $c + to_days($h::int)",
            {"c": cut, "h": a.horizon},
        ).df()
        f = pairs(cut).merge(labels, how="left").fillna({"y": 0})
        train.append(f[f.user_id.isin(f.user_id[f.y > 0])].assign(w=k))
    tr = pd.concat(train).sort_values(["w", "user_id"])
    if a.objective == "binary":
        model = lgb.LGBMClassifier(
            n_estimators=400, learning_rate=0.05, num_leaves=63, min_child_samples=100, verbose=-1
        )
        model.fit(tr[cols], tr.y)
        predict = lambda x: model.predict_proba(x)[:, 1]  # noqa: E731
    else:
        model = lgb.LGBMRanker(
            n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=50,
            lambdarank_truncation_level=20, verbose=-1,
        )  # fmt: skip
        model.fit(tr[cols], tr.y, group=tr.groupby(["w", "user_id"], sort=False).size().values)
        predict = model.predict
    test = pairs(test_cut)
    test["model"] = predict(test[cols])
    test["buy_again"] = test.n * 1e6 - test.dsl  # own purchases by count, then recency
    relevant = (
        con.execute(
            "select distinct user_id, item_id from ev where ts >= $c and ts < $c + to_days($d::int)",
            {"c": test_cut, "d": a.test_days},
        )
        .df()
        .groupby("user_id")["item_id"]
        .apply(set)
    )
    model_ndcg, ba_ndcg = (
        ndcg_at_10(test, "model", relevant),
        ndcg_at_10(test, "buy_again", relevant),
    )
    print(
        f"horizon {a.horizon} d, {a.windows} windows, {a.objective}, {len(tr):,} training pairs, "
        f"features {len(cols)}: NDCG@10 model {model_ndcg:.4f}, buy-again (own items only) "
        f"{ba_ndcg:.4f}, ratio {model_ndcg / ba_ndcg:.3f}"
    )


if __name__ == "__main__":
    main()
