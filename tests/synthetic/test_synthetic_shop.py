"""Tests of the synthetic shop generator: determinism, schemas and the planted structure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recpipe.tasks.synthetic.synthetic_shop import PRESETS, ShopConfig, ShopSummary, synthetic_shop

SMALL = PRESETS["small"]
SMALL_START = pd.Timestamp(SMALL.end - timedelta(days=SMALL.days))
SMALL_END = pd.Timestamp(SMALL.end)


@dataclass
class Shop:
    """A generated shop loaded into pandas."""

    summary: ShopSummary
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    interests: pd.DataFrame
    categories: pd.DataFrame
    item_truth: pd.DataFrame


def _load(summary: ShopSummary) -> Shop:
    root = summary.out_dir
    events = pd.concat([pd.read_parquet(p) for p in summary.event_files], ignore_index=True)
    return Shop(
        summary=summary,
        events=events,
        items=pd.read_parquet(root / "items.parquet"),
        users=pd.read_parquet(root / "users.parquet"),
        interests=pd.read_parquet(root / "ground_truth" / "user_interests.parquet"),
        categories=pd.read_parquet(root / "ground_truth" / "categories.parquet"),
        item_truth=pd.read_parquet(root / "ground_truth" / "items.parquet"),
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _load(synthetic_shop(tmp_path_factory.mktemp("small"), "small", seed=7))


@pytest.fixture(scope="module")
def tiny_chunked(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return _load(synthetic_shop(tmp_path_factory.mktemp("tiny"), "tiny", users_per_chunk=64))


def _parquet_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _with_category(shop: Shop) -> pd.DataFrame:
    return shop.events.merge(shop.items[["item_id", "category"]], on="item_id", how="left")


def _user_truth(shop: Shop) -> pd.DataFrame:
    """Per user: drift flag, drift time and top latent category before the drift."""
    gi = shop.interests
    top = gi.loc[gi.groupby("user_id")["weight_before"].idxmax(), ["user_id", "category"]]
    flags = gi.groupby("user_id").agg(drifts=("drifts", "first"), drift_ts=("drift_ts", "first"))
    return flags.join(top.set_index("user_id").rename(columns={"category": "top_category"}))


# --- determinism, files and schemas -----------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = synthetic_shop(tmp_path / "a", "tiny", seed=3, users_per_chunk=80)
    b = synthetic_shop(tmp_path / "b", "tiny", seed=3, users_per_chunk=80)
    c = synthetic_shop(tmp_path / "c", "tiny", seed=4, users_per_chunk=80)
    files_a, files_b = _parquet_bytes(a.out_dir), _parquet_bytes(b.out_dir)
    assert len(a.event_files) == 3
    assert set(files_a) == {
        "events/part-00000.parquet",
        "events/part-00001.parquet",
        "events/part-00002.parquet",
        "items.parquet",
        "users.parquet",
        "ground_truth/user_interests.parquet",
        "ground_truth/categories.parquet",
        "ground_truth/items.parquet",
    }
    assert files_a == files_b
    events_a = pq.read_table(a.out_dir / "events").to_pandas()
    events_c = pq.read_table(c.out_dir / "events").to_pandas()
    assert not events_a.equals(events_c)


def test_rerun_into_same_directory_replaces_stale_parts(tmp_path: Path) -> None:
    synthetic_shop(tmp_path, "tiny", users_per_chunk=50)
    summary = synthetic_shop(tmp_path, "tiny")
    assert sorted((tmp_path / "events").glob("part-*.parquet")) == summary.event_files
    assert len(summary.event_files) == 1


def test_schemas(tiny_chunked: Shop) -> None:
    root = tiny_chunked.summary.out_dir
    ts = pa.timestamp("us")
    expected_events = pa.schema(
        [
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("event_type", pa.string()),
            ("ts", ts),
            ("session_id", pa.int64()),
            ("price", pa.float64()),
            ("quantity", pa.int32()),
        ]
    )
    for path in tiny_chunked.summary.event_files:
        assert pq.read_schema(path).remove_metadata() == expected_events
    assert pq.read_schema(root / "items.parquet").remove_metadata() == pa.schema(
        [
            ("item_id", pa.int64()),
            ("category", pa.string()),
            ("brand", pa.string()),
            ("price", pa.float64()),
            ("available", pa.bool_()),
            ("created_at", ts),
        ]
    )
    assert pq.read_schema(root / "users.parquet").remove_metadata() == pa.schema(
        [("user_id", pa.int64()), ("signup_ts", ts)]
    )
    interests = pq.read_schema(root / "ground_truth" / "user_interests.parquet")
    assert interests.remove_metadata() == pa.schema(
        [
            ("user_id", pa.int64()),
            ("category", pa.string()),
            ("weight_before", pa.float64()),
            ("weight_after", pa.float64()),
            ("drifts", pa.bool_()),
            ("drift_ts", ts),
        ]
    )
    categories = pq.read_schema(root / "ground_truth" / "categories.parquet")
    assert categories.remove_metadata() == pa.schema(
        [("category", pa.string()), ("consumable", pa.bool_())]
    )
    cats = tiny_chunked.categories["category"].tolist()
    assert cats == [f"c{i:02d}" for i in range(PRESETS["tiny"].n_categories)]
    assert set(tiny_chunked.items["category"]) <= set(cats)
    assert (tiny_chunked.items["price"] > 0).all()
    assert len(tiny_chunked.items) == PRESETS["tiny"].n_items
    assert len(tiny_chunked.users) == PRESETS["tiny"].n_users


def test_string_ids_are_consistent_and_match_integer_run(
    tmp_path: Path, tiny_chunked: Shop
) -> None:
    shop = _load(synthetic_shop(tmp_path, "tiny", string_ids=True, users_per_chunk=64))
    for frame in (shop.events, shop.users, shop.interests):
        assert frame["user_id"].str.fullmatch(r"u\d{6}").all()
    for frame in (shop.events, shop.items, shop.item_truth):
        assert frame["item_id"].str.fullmatch(r"i\d{5}").all()
    assert set(shop.events["user_id"]) <= set(shop.users["user_id"])
    assert set(shop.interests["user_id"]) == set(shop.users["user_id"])
    assert set(shop.events["item_id"]) <= set(shop.items["item_id"])
    schema = pq.read_schema(shop.summary.event_files[0])
    assert schema.field("user_id").type == pa.string()
    assert schema.field("item_id").type == pa.string()

    # Same seed: the same shop, only the ids are spelled differently.
    converted = shop.events.assign(
        user_id=shop.events["user_id"].str[1:].astype("int64"),
        item_id=shop.events["item_id"].str[1:].astype("int64"),
    )
    pd.testing.assert_frame_equal(converted, tiny_chunked.events, check_dtype=False)


def test_overrides_and_validation(tmp_path: Path) -> None:
    summary = synthetic_shop(tmp_path / "o", "tiny", n_users=50, zero_event_user_share=0.1)
    assert summary.n_users == 50
    assert len(pd.read_parquet(tmp_path / "o" / "users.parquet")) == 50
    cfg = replace(PRESETS["tiny"], n_items=120)
    assert isinstance(cfg, ShopConfig)
    assert synthetic_shop(tmp_path / "p", cfg).n_items == 120
    with pytest.raises(ValueError):
        synthetic_shop(tmp_path / "x", "no-such-preset")
    with pytest.raises(ValueError):
        synthetic_shop(tmp_path / "y", "tiny", drift_share=1.5)
    with pytest.raises(TypeError):
        synthetic_shop(tmp_path / "z", "tiny", not_a_field=1)


# --- event log basics --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_event_count_near_target(preset: str, tiny_chunked: Shop, small: Shop) -> None:
    shop = tiny_chunked if preset == "tiny" else small
    target = PRESETS[preset].target_events
    assert shop.summary.n_events == len(shop.events)
    assert 0.75 * target <= shop.summary.n_events <= 1.25 * target


def test_event_types_funnel_and_quantities(small: Shop) -> None:
    ev = small.events
    counts = ev["event_type"].value_counts()
    assert set(counts.index) == {"view", "cart", "purchase"}
    assert counts["purchase"] < counts["cart"] < counts["view"]
    assert 0.08 < counts["cart"] / counts["view"] < 0.2
    assert (ev.loc[ev["event_type"] != "purchase", "quantity"] == 1).all()
    assert ev.loc[ev["event_type"] == "purchase", "quantity"].between(1, 3).all()
    assert ev["ts"].min() >= SMALL_START and ev["ts"].max() < SMALL_END
    prices = ev["item_id"].map(small.items.set_index("item_id")["price"])
    np.testing.assert_array_equal(ev["price"].to_numpy(), prices.to_numpy())


def test_carts_and_purchases_follow_a_view_in_the_same_session(small: Shop) -> None:
    ev = small.events
    first_view = (
        ev[ev["event_type"] == "view"]
        .groupby(["session_id", "item_id"])["ts"]
        .min()
        .rename("view_ts")
    )
    later = ev[ev["event_type"] != "view"].join(first_view, on=["session_id", "item_id"])
    assert later["view_ts"].notna().all()
    assert (later["ts"] > later["view_ts"]).all()


def test_sessions_files_and_order(tiny_chunked: Shop) -> None:
    files = [pd.read_parquet(p) for p in tiny_chunked.summary.event_files]
    assert len(files) == 4  # 200 users in chunks of 64
    session_sets = [set(f["session_id"]) for f in files]
    assert sum(len(s) for s in session_sets) == len(set().union(*session_sets))
    for f in files:
        assert f.equals(f.sort_values(["user_id", "ts"], kind="stable"))
    assert (tiny_chunked.events.groupby("session_id")["user_id"].nunique() == 1).all()


def test_popularity_is_long_tailed_and_history_is_predictive(small: Shop) -> None:
    views = small.events[small.events["event_type"] == "view"]
    per_item = views["item_id"].value_counts()
    top = per_item.iloc[: max(1, len(per_item) // 10)].sum()
    assert top / per_item.sum() > 0.35
    sizes = small.items["category"].value_counts()
    assert sizes.max() > 2 * sizes.min()
    # Re-visits: many views go to an item the user viewed in an earlier session.
    first_session = views.groupby(["user_id", "item_id"])["session_id"].transform("min")
    assert (views["session_id"] > first_session).mean() > 0.2


# --- planted structure -------------------------------------------------------------------------


def test_interest_ground_truth(small: Shop) -> None:
    gi = small.interests
    assert (gi[["weight_before", "weight_after"]].max(axis=1) > 0.01).all()
    totals = gi.groupby("user_id")[["weight_before", "weight_after"]].sum()
    assert totals.min().min() > 0.9 and totals.max().max() <= 1.0 + 1e-9
    stable = gi[~gi["drifts"]]
    assert (stable["weight_before"] == stable["weight_after"]).all()
    assert stable["drift_ts"].isna().all()
    drifting = gi[gi["drifts"]]
    assert drifting["drift_ts"].notna().all()
    share = gi.groupby("user_id")["drifts"].first().mean()
    assert 0.12 < share < 0.28
    # Dominant categories before and after the drift are disjoint.
    old = drifting[drifting["weight_before"] > 0.1]
    new = drifting[drifting["weight_after"] > 0.1]
    assert old.merge(new, on=["user_id", "category"]).empty
    assert drifting["drift_ts"].between(SMALL_START, SMALL_END).all()


def test_drifting_users_drift_and_others_stay(small: Shop) -> None:
    truth = _user_truth(small)
    ev = _with_category(small).join(truth[["drifts", "drift_ts"]], on="user_id")
    middle = SMALL_START + (SMALL_END - SMALL_START) / 2
    ev["after"] = ev["ts"] >= ev["drift_ts"].where(ev["drifts"], middle)
    counts = ev.groupby(["user_id", "after", "category"]).size().unstack("category", fill_value=0)
    before = counts.xs(False, level="after")
    after = counts.xs(True, level="after")
    users = before.index.intersection(after.index)
    before, after = before.loc[users], after.loc[users]
    enough = (before.sum(axis=1) >= 5) & (after.sum(axis=1) >= 5)
    before, after = before[enough], after[enough]
    top = before.to_numpy().argmax(axis=1)
    rows = np.arange(len(before))
    share_before = before.to_numpy()[rows, top] / before.sum(axis=1).to_numpy()
    share_after = after.to_numpy()[rows, top] / after.sum(axis=1).to_numpy()
    drifts = truth.loc[before.index, "drifts"].to_numpy()
    assert drifts.sum() >= 30 and (~drifts).sum() >= 100
    drop = share_before - share_after
    assert share_after[drifts].mean() < 0.15
    assert drop[drifts].mean() > 0.6
    assert share_after[~drifts].mean() > 0.45
    assert drop[drifts].mean() > drop[~drifts].mean() + 0.4


def test_consumables_repeat_and_durables_never(small: Shop) -> None:
    ev = _with_category(small).merge(small.categories, on="category")
    bought = ev[ev["event_type"] == "purchase"]
    per_pair = bought.groupby(["consumable", "user_id", "item_id"]).size()
    assert per_pair.loc[False].max() == 1
    repeats = per_pair.loc[True]
    assert (repeats >= 2).sum() >= 50
    assert (repeats >= 3).sum() >= 10
    # Repeats are spaced by days, not minutes.
    cons = bought[bought["consumable"]].sort_values(["user_id", "item_id", "ts"])
    gap = cons.groupby(["user_id", "item_id"])["ts"].diff().dropna()
    assert gap.median() > pd.Timedelta(days=5)


def test_most_interacted_category_is_top_latent_category(small: Shop) -> None:
    truth = _user_truth(small)
    ev = _with_category(small)
    counts = ev.groupby(["user_id", "category"]).size().unstack(fill_value=0)
    counts = counts[counts.sum(axis=1) >= 10]
    stable = truth.loc[counts.index]
    stable = stable[~stable["drifts"]]
    observed = counts.loc[stable.index].idxmax(axis=1)
    assert len(stable) >= 500
    assert (observed == stable["top_category"]).mean() > 0.7


def test_lifecycle_constraints(small: Shop) -> None:
    ev = small.events
    items = small.items.set_index("item_id")
    created = ev["item_id"].map(items["created_at"])
    assert (ev["ts"] >= created).all()
    new_items = items[items["created_at"] >= SMALL_START]
    assert 0.1 < len(new_items) / len(items) < 0.2
    assert ev["item_id"].isin(new_items.index).any()

    signup = ev["user_id"].map(small.users.set_index("user_id")["signup_ts"])
    assert (ev["ts"] >= signup).all()
    new_users = small.users[small.users["signup_ts"] >= SMALL_START]
    assert 0.15 < len(new_users) / len(small.users) < 0.35
    assert ev["user_id"].isin(new_users["user_id"]).any()

    truth = small.item_truth.set_index("item_id")
    out = truth["out_of_stock_ts"].notna()
    assert (out == ~items.loc[truth.index, "available"]).all()
    assert 0.03 < out.mean() < 0.07
    stockout = ev["item_id"].map(truth["out_of_stock_ts"])
    assert (ev.loc[stockout.notna(), "ts"] < stockout.dropna()).all()
    assert ev["item_id"].isin(truth.index[out]).any()

    silent = set(small.users["user_id"]) - set(ev["user_id"])
    assert len(silent) >= 0.01 * len(small.users)
    assert set(small.interests["user_id"]) == set(small.users["user_id"])


def test_weekends_have_more_sessions_per_day(small: Shop) -> None:
    starts = small.events.groupby("session_id")["ts"].min()
    per_day = starts.dt.floor("D").value_counts()
    weekend = per_day.index.dayofweek >= 5
    assert per_day[weekend].mean() > 1.15 * per_day[~weekend].mean()
    hours = starts.dt.hour.value_counts()
    assert hours.loc[[19, 20]].sum() > 3 * hours.loc[[3, 4]].sum()
