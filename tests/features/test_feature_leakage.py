"""Point-in-time correctness: events at or after the cutoff change no feature value."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from recpipe.tasks.features.feature_tables import FEATURE_TABLES, FeatureConfig, feature_tables
from recpipe.tasks.ingest.ingested_events import ingested_events

TYPES = ["view", "cart", "purchase"]
CFG = FeatureConfig(event_weights={"view": 1.0, "cart": 4.0, "purchase": 8.0})


def snapshot(warehouse, schema: str) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        out = {}
        for t in FEATURE_TABLES:
            df = con.sql(f"select * from {schema}.{t}").df()
            out[t] = df.sort_values(list(df.columns[:2])).reset_index(drop=True)
        return out


def test_events_after_the_cutoff_change_nothing(tiny_shop, tmp_path):
    events = pd.read_parquet(tiny_shop / "events")
    last = events["ts"].max()
    cutoff = (last - timedelta(days=5)).floor("D").to_pydatetime()
    past = events[events.ts < cutoff]
    future = events[events.ts >= cutoff]
    rng = np.random.default_rng(3)
    # "shuffle" the future: same users and items, random later times and types, plus extras
    noise = future.sample(frac=1.0, random_state=1).assign(
        ts=lambda d: (
            pd.Timestamp(cutoff) + pd.to_timedelta(rng.uniform(0, 3 * 86400, len(d)), unit="s")
        ),
        event_type=lambda d: rng.choice(TYPES, len(d)),
        session_id=lambda d: d.session_id + 10**9,
    )
    at_cutoff = past.tail(20).assign(ts=pd.Timestamp(cutoff))  # exactly at the cutoff: invisible
    now = datetime(2027, 1, 1)

    only_past = tmp_path / "past.parquet"
    past.to_parquet(only_past)
    with_future = tmp_path / "all.parquet"
    pd.concat([past, future, noise, at_cutoff]).to_parquet(with_future)

    results = {}
    for name, path in (("a", only_past), ("b", with_future)):
        lake, wh = tmp_path / f"lake_{name}", tmp_path / f"wh_{name}.duckdb"
        ingested_events(
            path, lake, TYPES, items=tiny_shop / "items.parquet", now=now, max_bad_row_share=0.2
        )
        feature_tables(lake, wh, cutoff, "train", CFG)
        results[name] = snapshot(wh, "train")
    for table in FEATURE_TABLES:
        assert len(results["a"][table]) > 0, table
        pd.testing.assert_frame_equal(
            results["a"][table], results["b"][table], check_exact=False, rtol=1e-9, obj=table
        )


def test_a_later_cutoff_does_see_new_events(tiny_shop, tmp_path):
    """Guard against a vacuous leakage test: moving the cutoff does change features."""
    lake, wh = tmp_path / "lake", tmp_path / "wh.duckdb"
    ingested_events(tiny_shop / "events", lake, TYPES, now=datetime(2027, 1, 1))
    last = pd.read_parquet(tiny_shop / "events")["ts"].max().to_pydatetime()
    feature_tables(lake, wh, last - timedelta(days=5), "train", CFG)
    feature_tables(lake, wh, last + timedelta(seconds=1), "eval", CFG)
    a, b = snapshot(wh, "train"), snapshot(wh, "eval")
    assert b["user_features"]["n_events"].sum() > a["user_features"]["n_events"].sum()
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(a["user_item_features"], b["user_item_features"])


def test_a_snapshot_built_from_the_same_inputs_is_kept_and_any_change_rebuilds_it(
    tiny_shop, tmp_path
):
    # `recpipe run` asks for the serve snapshot twice (train, then recommend): the second call
    # keeps the tables; new events, another cutoff or other settings rebuild them
    events = pd.read_parquet(tiny_shop / "events")
    last = events["ts"].max()
    cut = (last - timedelta(days=3)).floor("D").to_pydatetime()
    early, late = (
        events[events.ts < last - timedelta(days=2)],
        events[events.ts >= last - timedelta(days=2)],
    )
    early.to_parquet(tmp_path / "early.parquet")
    late.to_parquet(tmp_path / "late.parquet")
    lake, wh, now = tmp_path / "lake", tmp_path / "wh.duckdb", datetime(2027, 1, 1)
    ingested_events(tmp_path / "early.parquet", lake, TYPES, now=now)

    first = feature_tables(lake, wh, cut, "serve", CFG)
    built = snapshot(wh, "serve")
    again = feature_tables(lake, wh, cut, "serve", CFG)
    assert not first.reused and again.reused
    assert again.rows == {t: first.rows[t] for t in FEATURE_TABLES}
    for table in FEATURE_TABLES:
        pd.testing.assert_frame_equal(built[table], snapshot(wh, "serve")[table], obj=table)

    other = FeatureConfig(event_weights=CFG.event_weights, half_life_days=3.0)
    assert not feature_tables(lake, wh, cut, "serve", other).reused  # settings changed
    assert not feature_tables(lake, wh, cut, "serve", CFG).reused  # and back
    later = last.to_pydatetime() + timedelta(seconds=1)
    n_before = feature_tables(lake, wh, later, "serve", CFG).rows  # cutoff changed
    ingested_events(tmp_path / "late.parquet", lake, TYPES, now=now)  # the lake changed
    grown = feature_tables(lake, wh, later, "serve", CFG)
    assert not grown.reused and grown.rows["user_item_features"] > n_before["user_item_features"]
    # a build that stopped half way (its mark gone) is not taken for a finished one
    with duckdb.connect(str(wh)) as con:
        con.execute("drop table serve._build; drop table serve.item_covisitation")
    assert not feature_tables(lake, wh, later, "serve", CFG).reused
    assert len(snapshot(wh, "serve")["item_covisitation"]) > 0
