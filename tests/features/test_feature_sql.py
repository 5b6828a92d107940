"""Each feature SQL file against a hand-made frame with hand-computed expected values."""

from __future__ import annotations

from datetime import datetime

import pytest
from frames import build, events_frame, feature_con, items_frame

AS_OF = datetime(2026, 1, 11)
HL = 10.0


def decay(age_days: float) -> float:
    return 0.5 ** (age_days / HL)


@pytest.fixture()
def shop():
    events = events_frame(
        [
            # u1: one session buying i1 a day before the cutoff, an older view of i2
            (1, 1, "view", "2026-01-10 00:00", "s1"),
            (1, 1, "cart", "2026-01-10 00:05", "s1"),
            (1, 1, "purchase", "2026-01-10 00:10", "s1"),
            (1, 2, "view", "2026-01-01 00:00", "s2"),
            # u2: no session ids; buys i3 twice (7 and 3 days before), views i1 12h before
            (2, 3, "purchase", "2026-01-04 00:00", None),
            (2, 3, "purchase", "2026-01-08 00:00", None),
            (2, 1, "view", "2026-01-10 12:00", None),
            # at the cutoff: invisible
            (1, 3, "view", "2026-01-11 00:00", "s9"),
            (3, 4, "purchase", "2026-01-12 00:00", "s9"),
        ]
    )
    items = items_frame(
        [
            (1, "A", "2025-12-01"),
            (2, "B", "2025-12-01"),
            (3, "A", None),
            (4, "B", "2026-01-20"),  # created after the cutoff: not known yet
        ]
    )
    return feature_con(events, items, AS_OF, half_life_days=HL)


def test_user_features_golden(shop):
    df = build(shop, "user_features", AS_OF).set_index("user_id")
    assert list(df.index) == [1, 2]
    u1, u2 = df.loc[1], df.loc[2]
    assert (u1.n_events, u1.n_view_all, u1.n_cart_all, u1.n_purchase_all) == (4, 2, 1, 1)
    # the view at exactly 1.0 day is outside the 1-day window; cart/purchase are inside
    assert (u1.n_view_1d, u1.n_cart_1d, u1.n_purchase_1d) == (0, 1, 1)
    assert (u1.n_view_7d, u1.n_view_30d) == (1, 2)
    assert u1.days_since_last_event == pytest.approx(1 - 10 / 1440)
    assert u1.days_since_first_event == pytest.approx(10.0)
    assert (u1.active_days, u1.n_sessions, u1.n_items, u1.n_categories) == (2, 2, 2, 2)
    assert u1.purchase_rate == pytest.approx(0.5)
    # u2: purchases at age 7 (outside 7d) and 3 (inside); gap sessions: 3 separate visits
    assert (u2.n_purchase_7d, u2.n_purchase_30d, u2.n_view_1d) == (1, 2, 1)
    assert (u2.n_sessions, u2.n_categories) == (3, 1)
    assert u2.purchase_rate == pytest.approx(2.0)
    expected = 8 * decay(7) + 8 * decay(3) + 1 * decay(0.5)
    assert u2.decayed_strength == pytest.approx(expected)


def test_user_item_features_golden(shop):
    df = build(shop, "user_item_features", AS_OF).set_index(["user_id", "item_id"])
    assert sorted(df.index) == [(1, 1), (1, 2), (2, 1), (2, 3)]
    a = df.loc[(1, 1)]
    strength = 1 * decay(1.0) + 4 * decay(1 - 5 / 1440) + 8 * decay(1 - 10 / 1440)
    assert a.strength == pytest.approx(strength)
    assert (a.n_views, a.n_carts, a.n_purchases, a.repeat_purchases) == (1, 1, 1, 0)
    assert a.decayed_purchases == pytest.approx(decay(1 - 10 / 1440))
    b = df.loc[(2, 3)]
    assert (b.n_purchases, b.repeat_purchases) == (2, 1)
    assert b.days_since_last_purchase == pytest.approx(3.0)
    assert b.days_since_first == pytest.approx(7.0)


def test_user_category_affinity_golden(shop):
    df = build(shop, "user_category_affinity", AS_OF).set_index(["user_id", "category"])
    a, b = df.loc[(1, "A")], df.loc[(1, "B")]
    assert a.long_share == pytest.approx(13 / 14)  # view 1 + cart 4 + purchase 8 vs one view
    assert a.short_share == pytest.approx(1.0)  # the B view is 10 days old
    assert b.short_share == pytest.approx(0.0)
    assert a.drift == pytest.approx(1 - 13 / 14)
    assert b.drift == pytest.approx(-1 / 14)
    assert (a.category_rank, b.category_rank) == (1, 2)
    dec_a = decay(1.0) + 4 * decay(1 - 5 / 1440) + 8 * decay(1 - 10 / 1440)
    assert a.decayed_share == pytest.approx(dec_a / (dec_a + decay(10.0)))
    assert df.loc[(2, "A")].long_share == pytest.approx(1.0)


def test_item_features_golden(shop):
    df = build(shop, "item_features", AS_OF).set_index("item_id")
    assert sorted(df.index) == [1, 2, 3]  # item 4 is created after the cutoff
    i1 = df.loc[1]
    assert (i1.n_users_all, i1.n_view_all, i1.n_cart_all, i1.n_purchase_all) == (2, 2, 1, 1)
    assert (i1.n_users_1d, i1.n_users_7d) == (2, 2)  # u1's purchase and u2's view are < 1 day old
    assert i1.cart_rate == pytest.approx(2 / 12)
    assert i1.age_days == pytest.approx(41.0)  # created 2025-12-01
    assert i1.trend == pytest.approx(2 / (2 * 7 / 30 + 1))
    i3 = df.loc[3]
    assert i3.repeat_buyer_share == pytest.approx(1.0)
    assert i3.age_days == pytest.approx(7.0)  # no created_at: first event
    # category A: buyers (u1,i1) once and (u2,i3) twice -> half repeat
    assert i1.category_repeat_rate == pytest.approx(0.5)
    assert df.loc[2].category_repeat_rate == pytest.approx(0.0)
    assert bool(i1.available)


def test_item_covisitation_golden():
    events = events_frame(
        [
            (1, 10, "view", "2026-01-09 10:00", None),
            (1, 20, "view", "2026-01-09 10:10", None),  # same gap session as item 10
            (1, 30, "view", "2026-01-09 12:00", None),  # 110 min later: a new session
            (2, 10, "view", "2026-01-05 09:00", "x"),
            (2, 20, "view", "2026-01-05 09:01", "x"),
            (2, 30, "view", "2026-01-05 09:02", "x"),
            (3, 10, "view", "2025-11-01 09:00", "old"),  # older than covis_days
            (3, 40, "view", "2025-11-01 09:01", "old"),
        ]
    )
    con = feature_con(events, None, AS_OF, half_life_days=HL)
    df = build(con, "item_covisitation", AS_OF).set_index(["item_id", "other_item_id"])
    assert set(df.index) == {(10, 20), (20, 10), (10, 30), (30, 10), (20, 30), (30, 20)}
    assert df.loc[(10, 20)].n_sessions == 2
    assert df.loc[(10, 30)].n_sessions == 1
    # per session the pair scores the smaller (older) item decay: 10:00 on 01-09, 09:00 on 01-05
    assert df.loc[(10, 20)].score == pytest.approx(decay(1 + 14 / 24) + decay(5 + 15 / 24))
    assert df.loc[(10, 20)].neighbour_rank == 1
    top1 = build(con, "item_covisitation", AS_OF, top_n=1)
    assert top1.groupby("item_id").size().max() == 1


def test_string_ids_work_in_every_table():
    events = events_frame(
        [
            ("u-a", "sku-1", "view", "2026-01-09 10:00", "s"),
            ("u-a", "sku-2", "purchase", "2026-01-09 10:05", "s"),
            ("u-b", "sku-1", "cart", "2026-01-08 10:00", None),
        ]
    )
    con = feature_con(events, None, AS_OF)
    for table in (
        "user_features",
        "item_features",
        "user_category_affinity",
        "user_item_features",
        "item_covisitation",
    ):
        df = build(con, table, AS_OF)
        assert len(df) > 0, table
    uf = build(con, "user_features", AS_OF).set_index("user_id")
    assert uf.loc["u-a"].n_purchase_all == 1
    assert build(con, "user_category_affinity", AS_OF).category.unique().tolist() == ["unknown"]


def test_items_missing_from_the_catalogue_count_as_one_unknown_category():
    # the category is looked up per table (not copied onto every event): a user's events on
    # two uncatalogued items and one catalogued item make two categories, and an item created
    # after the cutoff still carries its catalogue category when it had earlier events
    events = events_frame(
        [
            (1, 10, "view", "2026-01-09 10:00", "s1"),
            (1, 11, "purchase", "2026-01-09 10:05", "s1"),
            (1, 12, "cart", "2026-01-10 09:00", "s2"),
            (2, 13, "view", "2026-01-10 09:00", "s3"),
        ]
    )
    items = items_frame([(10, "shoes", "2025-12-01"), (13, "hats", "2026-01-20")])
    con = feature_con(events, items, AS_OF)
    uf = build(con, "user_features", AS_OF).set_index("user_id")
    assert uf.loc[1].n_categories == 2 and uf.loc[2].n_categories == 1
    aff = build(con, "user_category_affinity", AS_OF)
    assert sorted(aff[aff.user_id == 1].category) == ["shoes", "unknown"]
    assert aff[aff.user_id == 1].decayed_share.sum() == pytest.approx(1.0)
    assert aff[aff.user_id == 2].category.tolist() == ["hats"]
    itf = build(con, "item_features", AS_OF).set_index("item_id")
    assert itf.category.to_dict() == {10: "shoes", 11: "unknown", 12: "unknown", 13: "hats"}


def test_interaction_labels_keep_each_pairs_best_grade_in_the_window():
    import duckdb

    from recpipe.tasks.common.sql_files import query

    con = duckdb.connect()
    events = events_frame(
        [
            (1, 1, "view", "2026-01-11 01:00", "s1"),
            (1, 1, "purchase", "2026-01-11 02:00", "s1"),  # best of view and purchase: 3
            (1, 2, "cart", "2026-01-11 03:00", "s1"),  # 2
            (2, 1, "wishlist", "2026-01-11 04:00", None),  # a type without a grade: 1
            (2, 2, "purchase", "2026-01-10 23:59", None),  # before the window
            (2, 3, "purchase", "2026-01-12 00:00", None),  # at the window's end: outside
        ]
    )
    con.register("lake_events", events)
    params = {
        "start": datetime(2026, 1, 11),
        "end": datetime(2026, 1, 12),
        "event_types": ["view", "cart", "purchase"],
        "event_grades": [1, 2, 3],
    }
    got = query(con, "labels/interaction_labels", params).df().sort_values(["user_id", "item_id"])
    assert list(zip(got.user_id, got.item_id, strict=True)) == [(1, 1), (1, 2), (2, 1)]
    assert got.grade.tolist() == [3, 2, 1]
    assert got.n_events.tolist() == [2, 1, 1]
