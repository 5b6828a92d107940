"""Seeded, vectorised generator of a synthetic e-commerce behaviour log with planted structure.

`synthetic_shop(out_dir, preset, seed)` writes, under `out_dir`:

- `events/part-NNNNN.parquet`: one file per user chunk (user_id, item_id, event_type, ts,
  session_id, price, quantity), sorted by (user_id, ts);
- `items.parquet`, `users.parquet`: catalogue and users (including users with no events);
- `ground_truth/user_interests.parquet`, `ground_truth/categories.parquet` and
  `ground_truth/items.parquet` (item popularity and stock-out time): what was planted.

Planted structure: sparse user interests over categories (some users drift to disjoint
categories mid-period), Zipf-like item popularity inside unequal categories, personal favourite
items that are revisited, heavy-tailed user activity, weekly and daily seasonality, a
view -> cart -> purchase funnel, periodic repeat purchases in consumable categories and none in
durable ones, users and items appearing during the period, and items going out of stock.

All randomness comes from `numpy.random.default_rng` seeded with `seed` (one sub-generator per
user chunk), and parquet files are written without wall-clock metadata, so a seed gives
byte-identical output. Memory is bounded by `ShopConfig.users_per_chunk`, not by the log size.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recpipe.contract import EVENT_TYPES
from recpipe.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["PRESETS", "ShopConfig", "ShopSummary", "synthetic_shop"]

US = 1_000_000
HOUR_US = 3_600 * US
DAY_US = 86_400 * US
NEVER = np.iinfo(np.int64).max
EPOCH = datetime(1970, 1, 1)

VIEW, CART, PURCHASE = 0, 1, 2
COMPRESSION = "zstd"

# Behaviour knobs (not part of ShopConfig: they shape the planted structure).
_MEAN_VIEWS = 4.5  # geometric number of views per session
_MAX_VIEWS = 60
_MAX_SESSIONS = 3_000  # per user, caps the heavy tail
_ACTIVITY_SIGMA = 1.0  # lognormal sigma of user activity
_P_FAV_VIEW = 0.4  # a view goes to a favourite when the user has one in the session category
_P_CART, _P_CART_FAV = 0.08, 0.20
_P_PURCHASE = 0.45
_QUANTITY_P = np.array([0.72, 0.20, 0.08])  # quantities 1, 2, 3
_BACKGROUND = 0.05  # interest mass spread over all categories by their size
_DOMINANT_K = np.array([2, 3, 4])
_DOMINANT_K_P = np.array([0.4, 0.4, 0.2])
_DOMINANT_ALPHA = np.array([6.0, 1.5, 1.0, 0.8])  # Dirichlet concentration by rank
_FAV_MIN, _FAV_MAX = 3, 15
_REPEAT_MEAN_DAYS, _REPEAT_SHAPE = 14.0, 4.0  # gamma intervals between repeat purchases
_REPEAT_CONTINUE = 0.85  # chance a repeat chain goes on after each purchase
_ZIPF_S = 1.1
_WEEKEND_FACTOR = 1.4
_HOUR_PROFILE = np.array(
    [0.30, 0.20, 0.15, 0.12, 0.12, 0.20, 0.40, 0.65, 0.85, 0.95, 1.00, 1.05,
     1.10, 1.05, 1.00, 1.00, 1.05, 1.15, 1.30, 1.50, 1.60, 1.40, 1.00, 0.60]
)  # fmt: skip


@dataclass(frozen=True)
class ShopConfig:
    """Size and shape of a synthetic shop; the log covers [end - days, end) (naive UTC)."""

    n_users: int
    n_items: int
    n_categories: int
    days: int
    target_events: int
    end: datetime = datetime(2026, 10, 31)
    consumable_share: float = 0.3
    drift_share: float = 0.2
    new_user_share: float = 0.25
    new_item_share: float = 0.15
    out_of_stock_share: float = 0.05
    zero_event_user_share: float = 0.02
    users_per_chunk: int = 50_000


PRESETS: dict[str, ShopConfig] = {
    "tiny": ShopConfig(n_users=200, n_items=300, n_categories=8, days=30, target_events=4_000),
    "small": ShopConfig(
        n_users=2_000, n_items=1_000, n_categories=12, days=45, target_events=60_000
    ),
    "demo": ShopConfig(
        n_users=20_000, n_items=5_000, n_categories=30, days=60, target_events=1_000_000
    ),
    "medium": ShopConfig(
        n_users=200_000, n_items=50_000, n_categories=50, days=90, target_events=10_000_000
    ),
    "large": ShopConfig(
        n_users=2_000_000, n_items=200_000, n_categories=100, days=180, target_events=100_000_000
    ),
}


@dataclass(frozen=True)
class ShopSummary:
    """What `synthetic_shop` wrote."""

    out_dir: Path
    n_events: int
    n_users: int
    n_items: int
    event_files: list[Path]


# ---------------------------------------------------------------------------------------------
# Schemas


def _id_type(string_ids: bool) -> pa.DataType:
    return pa.string() if string_ids else pa.int64()


def events_schema(string_ids: bool = False) -> pa.Schema:
    """Arrow schema of the event files."""
    return pa.schema(
        [
            ("user_id", _id_type(string_ids)),
            ("item_id", _id_type(string_ids)),
            ("event_type", pa.string()),
            ("ts", pa.timestamp("us")),
            ("session_id", pa.int64()),
            ("price", pa.float64()),
            ("quantity", pa.int32()),
        ]
    )


def _users_schema(string_ids: bool) -> pa.Schema:
    return pa.schema([("user_id", _id_type(string_ids)), ("signup_ts", pa.timestamp("us"))])


def _interests_schema(string_ids: bool) -> pa.Schema:
    return pa.schema(
        [
            ("user_id", _id_type(string_ids)),
            ("category", pa.string()),
            ("weight_before", pa.float64()),
            ("weight_after", pa.float64()),
            ("drifts", pa.bool_()),
            ("drift_ts", pa.timestamp("us")),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Small helpers


def _to_us(dt: datetime) -> int:
    """Microseconds since the epoch of a naive UTC datetime."""
    return (dt - EPOCH) // timedelta(microseconds=1)


def _ts_array(us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """timestamp[us] array from int64 microseconds (mask marks nulls)."""
    return pa.array(np.asarray(us, dtype=np.int64).view("datetime64[us]"), mask=mask)


def _format_ids(prefix: str, ids: np.ndarray, width: int) -> pa.Array:
    """String ids such as 'u000123' for integer ids."""
    text = np.char.add(
        prefix, np.char.zfill(np.asarray(ids, dtype=np.int64).astype(np.str_), width)
    )
    return pa.array(text, pa.string())


def _write(table: pa.Table, path: Path) -> None:
    """Write a parquet file deterministically (fixed compression, no timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression=COMPRESSION)


def _categorical_rows(
    rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """For each entry of `rows`, a column index drawn with probabilities from that row of `weights`."""
    n, c = weights.shape
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    cdf += np.arange(n, dtype=np.float64)[:, None]
    pos = np.searchsorted(cdf.ravel(), rows + rng.random(rows.size), side="right")
    return np.minimum(pos - rows * c, c - 1)


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    """Index of the first element of each segment of a concatenation with these lengths."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


# ---------------------------------------------------------------------------------------------
# Period and catalogue


@dataclass(frozen=True)
class _Period:
    start_us: int
    end_us: int
    hour_weight: np.ndarray  # intensity of session starts per hour of the period
    hour_cdf: np.ndarray  # len(hour_weight) + 1, starts at 0

    @property
    def length_us(self) -> int:
        return self.end_us - self.start_us


def _build_period(cfg: ShopConfig) -> _Period:
    """Period bounds and the hourly session-start intensity (weekly x daily seasonality)."""
    end_us = _to_us(cfg.end)
    start_us = end_us - cfg.days * DAY_US
    hours = np.arange(cfg.days * 24, dtype=np.int64)
    hour_start = start_us + hours * HOUR_US
    hour_of_day = (hour_start // HOUR_US) % 24
    weekday = (hour_start // DAY_US + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weight = _HOUR_PROFILE[hour_of_day] * np.where(weekday >= 5, _WEEKEND_FACTOR, 1.0)
    cdf = np.concatenate(([0.0], np.cumsum(weight)))
    return _Period(start_us=start_us, end_us=end_us, hour_weight=weight, hour_cdf=cdf)


def _sample_times(rng: np.random.Generator, period: _Period, lower_us: np.ndarray) -> np.ndarray:
    """Seasonal session start times in [lower_us, end) (int64 microseconds)."""
    w, cdf = period.hour_weight, period.hour_cdf
    n_hours = w.size
    lower_h = (lower_us - period.start_us) / HOUR_US
    h0 = np.clip(np.floor(lower_h).astype(np.int64), 0, n_hours - 1)
    lo = cdf[h0] + np.clip(lower_h - h0, 0.0, 1.0) * w[h0]
    u = lo + rng.random(lower_us.size) * (cdf[-1] - lo)
    h = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, n_hours - 1)
    frac = np.clip((u - cdf[h]) / w[h], 0.0, 1.0)
    t = period.start_us + ((h + frac) * HOUR_US).astype(np.int64)
    return np.minimum(np.maximum(t, lower_us), period.end_us - 1)


@dataclass(frozen=True)
class _Catalog:
    category: np.ndarray  # int64 per item
    brand: np.ndarray  # int64 per item
    price: np.ndarray  # float64 per item
    created_us: np.ndarray  # int64 per item
    stockout_us: np.ndarray  # int64 per item, NEVER when in stock
    popularity: np.ndarray  # share of its category's draws, per item
    sorted_items: np.ndarray  # items ordered by (category, random)
    global_cdf: np.ndarray  # category index + within-category cdf, aligned with sorted_items
    category_share: np.ndarray  # float64 per category (also its pull on user interests)
    consumable: np.ndarray  # bool per category
    n_brands: int

    def draw(self, rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
        """Items drawn by popularity inside the given categories."""
        pos = np.searchsorted(
            self.global_cdf, categories + rng.random(categories.size), side="right"
        )
        return self.sorted_items[np.minimum(pos, self.sorted_items.size - 1)]

    def valid(self, items: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Whether each item exists and is in stock at the given time."""
        return (self.created_us[items] <= ts) & (ts < self.stockout_us[items])


def _build_catalog(cfg: ShopConfig, seed: int, period: _Period) -> _Catalog:
    """Categories of unequal size, Zipf-like popularity inside them, prices, brands, dates, stock."""
    rng = np.random.default_rng([seed, 0])
    n, c = cfg.n_items, cfg.n_categories
    share = rng.lognormal(0.0, 0.7, c)
    share /= share.sum()
    consumable = np.zeros(c, dtype=bool)
    consumable[rng.choice(c, int(round(c * cfg.consumable_share)), replace=False)] = True

    category = np.concatenate((np.arange(c), rng.choice(c, n - c, p=share)))
    category = rng.permutation(category).astype(np.int64)
    counts = np.bincount(category, minlength=c)
    offsets = _segment_starts(counts)

    order = np.lexsort((rng.random(n), category))
    sorted_cat = category[order]
    rank = np.arange(n) - offsets[sorted_cat]
    w = (rank + 2.0) ** -_ZIPF_S
    totals = np.add.reduceat(w, offsets)
    cum = np.cumsum(w)
    within = cum - (cum[offsets] - w[offsets])[sorted_cat]
    within_cdf = within / totals[sorted_cat]
    within_cdf[offsets + counts - 1] = 1.0
    popularity = np.empty(n)
    popularity[order] = w / totals[sorted_cat]

    n_brands_cat = np.maximum(2, counts // 15)
    brand_offset = _segment_starts(n_brands_cat)
    local_brand = np.floor(n_brands_cat[category] * rng.random(n) ** 2).astype(np.int64)
    brand = brand_offset[category] + local_brand

    base = np.exp(rng.normal(3.3, 0.8, c)) * np.where(consumable, 0.25, 1.0)
    price = np.maximum(np.round(base[category] * rng.lognormal(0.0, 0.45, n), 2), 0.49)

    created = period.start_us - (rng.uniform(1.0, 730.0, n) * DAY_US).astype(np.int64)
    new = rng.choice(n, int(round(n * cfg.new_item_share)), replace=False)
    created[new] = period.start_us + (rng.uniform(0.0, 0.9, new.size) * period.length_us).astype(
        np.int64
    )
    created = created // US * US

    stockout = np.full(n, NEVER, dtype=np.int64)
    oos = rng.choice(n, int(round(n * cfg.out_of_stock_share)), replace=False)
    earliest = np.minimum(np.maximum(created[oos], period.start_us) + DAY_US, period.end_us - US)
    stockout[oos] = (earliest + rng.random(oos.size) * (period.end_us - earliest)) // US * US
    stockout[oos] = np.minimum(stockout[oos], period.end_us - US)

    return _Catalog(
        category=category,
        brand=brand,
        price=price,
        created_us=created,
        stockout_us=stockout,
        popularity=popularity,
        sorted_items=order.astype(np.int64),
        global_cdf=sorted_cat + within_cdf,
        category_share=share,
        consumable=consumable,
        n_brands=int(n_brands_cat.sum()),
    )


# ---------------------------------------------------------------------------------------------
# Calibration


def _expected_repeats(rng: np.random.Generator, days: int, m: int = 20_000) -> float:
    """Mean number of repeat purchases following a consumable purchase at a uniform time."""
    remaining = rng.random(m) * days * 0.8  # drift, stock-outs and late signups shorten chains
    total = np.zeros(m)
    alive = np.ones(m, dtype=bool)
    elapsed = np.zeros(m)
    while alive.any():
        elapsed += rng.gamma(_REPEAT_SHAPE, _REPEAT_MEAN_DAYS / _REPEAT_SHAPE, m)
        alive &= (rng.random(m) < _REPEAT_CONTINUE) & (elapsed < remaining)
        total += alive
    return float(total.mean())


def _session_scale(cfg: ShopConfig, catalog: _Catalog, seed: int) -> float:
    """Multiplier on user activity that makes the log land near `target_events`."""
    rng = np.random.default_rng([seed, 2])
    fav_share = 0.33  # measured share of views that go to favourites
    p_cart = fav_share * _P_CART_FAV + (1 - fav_share) * _P_CART
    purchases = _MEAN_VIEWS * p_cart * _P_PURCHASE
    consumable_mass = float(catalog.category_share[catalog.consumable].sum())
    per_session = _MEAN_VIEWS * (1 + p_cart + p_cart * _P_PURCHASE)
    per_session += purchases * consumable_mass * 2 * _expected_repeats(rng, cfg.days)
    active_users = cfg.n_users * (1 - cfg.zero_event_user_share)
    sessions_per_user = cfg.target_events / max(active_users, 1.0) / per_session

    m = 50_000
    activity = rng.lognormal(-(_ACTIVITY_SIGMA**2) / 2, _ACTIVITY_SIGMA, m)
    window = np.where(rng.random(m) < cfg.new_user_share, rng.uniform(0.05, 1.0, m), 1.0)
    base = activity * window

    def mean_sessions(scale: float) -> float:
        return float(np.minimum(np.maximum(scale * base, 1.0), _MAX_SESSIONS).mean())

    lo, hi = 0.0, 1.0
    while mean_sessions(hi) < sessions_per_user and hi < 1e9:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_sessions(mid) < sessions_per_user else (lo, mid)
    return hi


# ---------------------------------------------------------------------------------------------
# Users


@dataclass(frozen=True)
class _Users:
    ids: np.ndarray  # global int64 ids
    signup_us: np.ndarray
    active_from_us: np.ndarray
    zero: np.ndarray  # bool: users without events
    drifts: np.ndarray  # bool
    drift_us: np.ndarray  # NEVER when not drifting
    w_before: np.ndarray  # (n, C) interest weights
    w_after: np.ndarray
    dom_before: np.ndarray  # (n, C) dominant part only (favourites come from it)
    dom_after: np.ndarray
    activity: np.ndarray


def _dominant(
    rng: np.random.Generator, k: np.ndarray, pull: np.ndarray, exclude: np.ndarray | None
) -> np.ndarray:
    """(n, C) weights over k distinct categories per row (drawn by pull), Dirichlet by rank."""
    n, c = k.size, pull.size
    keys = np.log(pull)[None, :] + rng.gumbel(size=(n, c))
    if exclude is not None:
        keys[exclude] = -np.inf
    top = np.argsort(-keys, axis=1, kind="stable")[:, : _DOMINANT_ALPHA.size]
    g = rng.gamma(np.broadcast_to(_DOMINANT_ALPHA[: top.shape[1]], (n, top.shape[1])))
    g *= np.arange(top.shape[1])[None, :] < k[:, None]
    g /= g.sum(axis=1, keepdims=True)
    out = np.zeros((n, c))
    rows = np.arange(n)
    for j in range(top.shape[1]):
        out[rows, top[:, j]] += g[:, j]
    return out


def _build_users(
    cfg: ShopConfig, catalog: _Catalog, period: _Period, rng: np.random.Generator, lo: int, hi: int
) -> _Users:
    """Signup times, activity, latent interests and drift for users lo..hi-1."""
    n, c = hi - lo, cfg.n_categories
    new = rng.random(n) < cfg.new_user_share
    old_signup = period.start_us - (rng.uniform(1.0, 730.0, n) * DAY_US).astype(np.int64)
    new_signup = period.start_us + (rng.uniform(0.0, 0.95, n) * period.length_us).astype(np.int64)
    signup = np.where(new, new_signup, old_signup) // US * US
    active_from = np.maximum(signup, period.start_us)
    zero = np.zeros(n, dtype=bool)
    zero[rng.choice(n, int(round(n * cfg.zero_event_user_share)), replace=False)] = True

    k_max = max(1, min(_DOMINANT_ALPHA.size, c // 2 if c >= 2 else 1))
    k = np.minimum(rng.choice(_DOMINANT_K, n, p=_DOMINANT_K_P), k_max)
    dom_before = _dominant(rng, k, catalog.category_share, None)
    drifts = (rng.random(n) < cfg.drift_share) & ~zero & (c >= 2)
    dom_after = dom_before.copy()
    d = np.flatnonzero(drifts)
    if d.size:
        k_new = np.clip(rng.choice(_DOMINANT_K, d.size, p=_DOMINANT_K_P), 1, c - k[d])
        dom_after[d] = _dominant(rng, k_new, catalog.category_share, dom_before[d] > 0)
    background = _BACKGROUND * catalog.category_share[None, :]
    w_before = (1 - _BACKGROUND) * dom_before + background
    w_after = (1 - _BACKGROUND) * dom_after + background
    span = period.end_us - active_from
    drift_at = (active_from + (rng.uniform(0.3, 0.7, n) * span).astype(np.int64)) // US * US
    drift_us = np.where(drifts, drift_at, NEVER)
    activity = rng.lognormal(-(_ACTIVITY_SIGMA**2) / 2, _ACTIVITY_SIGMA, n)
    if (~zero).any():  # mean 1 over the chunk's active users keeps the event count on target
        activity /= activity[~zero].mean()
    return _Users(
        ids=np.arange(lo, hi, dtype=np.int64),
        signup_us=signup,
        active_from_us=active_from,
        zero=zero,
        drifts=drifts,
        drift_us=drift_us,
        w_before=w_before,
        w_after=w_after,
        dom_before=dom_before,
        dom_after=dom_after,
        activity=activity,
    )


def _build_favourites(
    rng: np.random.Generator, users: _Users, catalog: _Catalog, n_categories: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted lookup keys ((user*2 + phase)*C + category) and favourite items per key."""
    n = users.ids.size
    phase1 = np.flatnonzero(users.drifts)
    rows = np.concatenate((np.arange(n), n + phase1))  # n + u: drifter u after the drift
    n_fav = rng.integers(_FAV_MIN, _FAV_MAX + 1, rows.size)
    fav_row = np.repeat(rows, n_fav)
    dom = np.concatenate((users.dom_before, users.dom_after[phase1]))
    row_pos = np.repeat(np.arange(rows.size), n_fav)
    cats = _categorical_rows(rng, dom, row_pos)
    items = catalog.draw(rng, cats)
    phase = (fav_row >= n).astype(np.int64)
    user_local = fav_row - phase * n
    keys = (user_local * 2 + phase) * n_categories + cats
    pairs = np.unique(np.stack((keys, items), axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


# ---------------------------------------------------------------------------------------------
# Events of one chunk


@dataclass(frozen=True)
class _ChunkEvents:
    user: np.ndarray  # local user index
    item: np.ndarray
    etype: np.ndarray  # int8 codes into EVENT_TYPES
    ts: np.ndarray
    session: np.ndarray  # chunk-local session index
    quantity: np.ndarray
    session_user: np.ndarray
    session_start: np.ndarray


def _simulate_chunk(
    cfg: ShopConfig,
    catalog: _Catalog,
    period: _Period,
    users: _Users,
    rng: np.random.Generator,
    scale: float,
) -> _ChunkEvents:
    """Sessions, views, funnel and repeat purchases of one user chunk (all vectorised)."""
    n, c = users.ids.size, cfg.n_categories
    fav_keys, fav_items = _build_favourites(rng, users, catalog, c)

    # Sessions: heavy-tailed count, seasonal start, one category from the current interests.
    window = (period.end_us - users.active_from_us) / period.length_us
    lam = np.minimum(scale * users.activity * window, _MAX_SESSIONS)
    n_sess = np.where(users.zero, 0, 1 + rng.poisson(np.maximum(lam - 1.0, 0.0)))
    s_user = np.repeat(np.arange(n), n_sess)
    s_start = _sample_times(rng, period, users.active_from_us[s_user])
    s_phase = (s_start >= users.drift_us[s_user]).astype(np.int64)
    s_cat = _categorical_rows(
        rng, np.concatenate((users.w_before, users.w_after)), s_user + s_phase * n
    )
    n_views = np.minimum(rng.geometric(1.0 / _MEAN_VIEWS, s_user.size), _MAX_VIEWS)

    # Views a few seconds to minutes apart.
    v_sess = np.repeat(np.arange(s_user.size), n_views)
    gaps = ((5.0 + rng.exponential(50.0, v_sess.size)) * US).astype(np.int64)
    excl = np.cumsum(gaps) - gaps
    v_ts = s_start[v_sess] + excl - excl[_segment_starts(n_views)][v_sess]
    v_user = s_user[v_sess]
    v_cat = s_cat[v_sess]

    # Favourites first (when the user has some in this category), then popularity.
    key = (v_user * 2 + s_phase[v_sess]) * c + v_cat
    f_lo = np.searchsorted(fav_keys, key, side="left")
    f_hi = np.searchsorted(fav_keys, key, side="right")
    pick = f_lo + np.floor(rng.random(v_sess.size) * (f_hi - f_lo)).astype(np.int64)
    item = np.full(v_sess.size, -1, dtype=np.int64)
    is_fav = (f_hi > f_lo) & (rng.random(v_sess.size) < _P_FAV_VIEW)
    item[is_fav] = fav_items[np.minimum(pick[is_fav], max(fav_items.size - 1, 0))]
    is_fav &= catalog.valid(np.maximum(item, 0), v_ts)
    todo = np.flatnonzero(~is_fav)
    for _ in range(8):  # redraw items that do not exist or are out of stock at the view time
        if todo.size == 0:
            break
        item[todo] = catalog.draw(rng, v_cat[todo])
        todo = todo[~catalog.valid(item[todo], v_ts[todo])]
    item[todo] = -1

    # Funnel: cart and purchase follow their view inside the session.
    carted = rng.random(v_sess.size) < np.where(is_fav, _P_CART_FAV, _P_CART)
    bought = carted & (rng.random(v_sess.size) < _P_PURCHASE)
    keep_view = (item >= 0) & (v_ts < period.end_us)
    carted &= keep_view
    bought &= keep_view
    c_ts = v_ts[carted] + (0.35 * gaps[carted]).astype(np.int64)
    p_idx = np.flatnonzero(bought)
    p_ts = v_ts[p_idx] + (0.7 * gaps[p_idx]).astype(np.int64)
    p_ok = p_ts < np.minimum(catalog.stockout_us[item[p_idx]], period.end_us)
    p_idx, p_ts = p_idx[p_ok], p_ts[p_ok]
    p_user, p_item = v_user[p_idx], item[p_idx]

    # One purchase per (user, item) in durable categories; the first one seeds repeats otherwise.
    order = np.lexsort((p_ts, p_item, p_user))
    first = np.ones(order.size, dtype=bool)
    first[1:] = (p_user[order][1:] != p_user[order][:-1]) | (
        p_item[order][1:] != p_item[order][:-1]
    )
    is_first = np.empty(order.size, dtype=bool)
    is_first[order] = first
    cons = catalog.consumable[catalog.category[p_item]]
    keep_p = is_first | cons
    seeds = np.flatnonzero(is_first & cons)
    r_user, r_item, r_ts = _repeat_chains(
        rng, catalog, period, users, p_user[seeds], p_item[seeds], p_ts[seeds]
    )
    p_idx, p_ts = p_idx[keep_p], p_ts[keep_p]

    n_org, n_rep = s_user.size, r_user.size
    r_sess = n_org + np.arange(n_rep, dtype=np.int64)
    r_buy_ts = r_ts + (rng.uniform(20.0, 300.0, n_rep) * US).astype(np.int64)
    qty = np.concatenate(
        (
            np.ones(int(keep_view.sum()) + c_ts.size + n_rep, dtype=np.int32),
            (1 + rng.choice(3, p_idx.size + n_rep, p=_QUANTITY_P)).astype(np.int32),
        )
    )
    events = _ChunkEvents(
        user=np.concatenate((v_user[keep_view], v_user[carted], r_user, v_user[p_idx], r_user)),
        item=np.concatenate((item[keep_view], item[carted], r_item, item[p_idx], r_item)),
        etype=np.concatenate(
            (
                np.full(int(keep_view.sum()), VIEW, dtype=np.int8),
                np.full(c_ts.size, CART, dtype=np.int8),
                np.full(n_rep, VIEW, dtype=np.int8),
                np.full(p_idx.size + n_rep, PURCHASE, dtype=np.int8),
            )
        ),
        ts=np.concatenate((v_ts[keep_view], c_ts, r_ts, p_ts, r_buy_ts)),
        session=np.concatenate((v_sess[keep_view], v_sess[carted], r_sess, v_sess[p_idx], r_sess)),
        quantity=qty,
        session_user=np.concatenate((s_user, r_user)),
        session_start=np.concatenate((s_start, r_ts)),
    )
    ok = (events.ts < period.end_us) & (events.ts < catalog.stockout_us[events.item])
    if ok.all():
        return events
    return dataclasses.replace(
        events,
        user=events.user[ok],
        item=events.item[ok],
        etype=events.etype[ok],
        ts=events.ts[ok],
        session=events.session[ok],
        quantity=events.quantity[ok],
    )


def _repeat_chains(
    rng: np.random.Generator,
    catalog: _Catalog,
    period: _Period,
    users: _Users,
    user: np.ndarray,
    item: np.ndarray,
    t0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeat-purchase session starts (user, item, ts) after consumable purchases."""
    drift = users.drift_us[user]
    stop = np.minimum(period.end_us, catalog.stockout_us[item])
    stop = np.where(t0 < drift, np.minimum(stop, drift), stop) - 600 * US
    idx = np.arange(user.size)
    cur = t0.copy()
    out_idx: list[np.ndarray] = []
    out_ts: list[np.ndarray] = []
    while idx.size:
        step = rng.gamma(_REPEAT_SHAPE, _REPEAT_MEAN_DAYS / _REPEAT_SHAPE, idx.size) * DAY_US
        cur = cur + step.astype(np.int64)
        alive = (rng.random(idx.size) < _REPEAT_CONTINUE) & (cur < stop[idx])
        idx, cur = idx[alive], cur[alive]
        out_idx.append(idx)
        out_ts.append(cur)
    if not out_idx:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    sel = np.concatenate(out_idx)
    return user[sel], item[sel], np.concatenate(out_ts)


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass(frozen=True)
class _Ids:
    string_ids: bool
    user_width: int
    item_width: int
    item_strings: pa.Array | None

    def users(self, ids: np.ndarray) -> pa.Array:
        """User id column for global integer ids."""
        if self.string_ids:
            return _format_ids("u", ids, self.user_width)
        return pa.array(ids, pa.int64())

    def items(self, ids: np.ndarray) -> pa.Array:
        """Item id column for integer ids."""
        if self.item_strings is not None:
            return self.item_strings.take(pa.array(ids, pa.int64()))
        return pa.array(ids, pa.int64())


def _category_names(n_categories: int) -> list[str]:
    """'c00', 'c01', ... (wider when there are more than 100 categories)."""
    width = max(2, len(str(n_categories - 1)))
    return [f"c{i:0{width}d}" for i in range(n_categories)]


def _events_table(
    events: _ChunkEvents, users: _Users, catalog: _Catalog, ids: _Ids, session_offset: int
) -> pa.Table:
    """Events sorted by (user, ts) with session ids numbered from session_offset."""
    used, local = np.unique(events.session, return_inverse=True)
    s_order = np.lexsort((events.session_start[used], events.session_user[used]))
    rank = np.empty(used.size, dtype=np.int64)
    rank[s_order] = np.arange(used.size, dtype=np.int64)
    session_id = session_offset + rank[local]

    order = np.lexsort((events.etype, events.ts, events.user))
    item = events.item[order]
    etype_names = pa.array(EVENT_TYPES, pa.string())
    return pa.Table.from_arrays(
        [
            ids.users(users.ids[events.user[order]]),
            ids.items(item),
            etype_names.take(pa.array(events.etype[order].astype(np.int64))),
            _ts_array(events.ts[order]),
            pa.array(session_id[order], pa.int64()),
            pa.array(catalog.price[item], pa.float64()),
            pa.array(events.quantity[order], pa.int32()),
        ],
        schema=events_schema(ids.string_ids),
    )


def _interests_table(users: _Users, cat_names: pa.Array, ids: _Ids) -> pa.Table:
    """Long-format latent interests with weight above 0.01 before or after the drift."""
    rows, cats = np.nonzero(np.maximum(users.w_before, users.w_after) > 0.01)
    drifts = users.drifts[rows]
    return pa.Table.from_arrays(
        [
            ids.users(users.ids[rows]),
            cat_names.take(pa.array(cats, pa.int64())),
            pa.array(users.w_before[rows, cats], pa.float64()),
            pa.array(users.w_after[rows, cats], pa.float64()),
            pa.array(drifts, pa.bool_()),
            _ts_array(np.where(drifts, users.drift_us[rows], 0), mask=~drifts),
        ],
        schema=_interests_schema(ids.string_ids),
    )


def _write_catalog(out_dir: Path, catalog: _Catalog, cat_names: pa.Array, ids: _Ids) -> None:
    """items.parquet, ground_truth/categories.parquet and ground_truth/items.parquet."""
    n = catalog.category.size
    item_ids = ids.items(np.arange(n, dtype=np.int64))
    brand_width = max(4, len(str(catalog.n_brands - 1)))
    oos = catalog.stockout_us != NEVER
    _write(
        pa.table(
            {
                "item_id": item_ids,
                "category": cat_names.take(pa.array(catalog.category, pa.int64())),
                "brand": _format_ids("b", catalog.brand, brand_width),
                "price": pa.array(catalog.price, pa.float64()),
                "available": pa.array(~oos, pa.bool_()),
                "created_at": _ts_array(catalog.created_us),
            }
        ),
        out_dir / "items.parquet",
    )
    _write(
        pa.table({"category": cat_names, "consumable": pa.array(catalog.consumable, pa.bool_())}),
        out_dir / "ground_truth" / "categories.parquet",
    )
    _write(
        pa.table(
            {
                "item_id": item_ids,
                "popularity": pa.array(catalog.popularity, pa.float64()),
                "out_of_stock_ts": _ts_array(np.where(oos, catalog.stockout_us, 0), mask=~oos),
            }
        ),
        out_dir / "ground_truth" / "items.parquet",
    )


# ---------------------------------------------------------------------------------------------
# Entry point


def _resolve_config(preset: str | ShopConfig, overrides: dict[str, object]) -> ShopConfig:
    """The preset (by name or as given) with overrides applied, validated."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        cfg = PRESETS[preset]
    else:
        cfg = preset
    cfg = dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]
    for name in ("n_users", "n_items", "n_categories", "days", "target_events", "users_per_chunk"):
        if getattr(cfg, name) <= 0:
            raise InputError(f"{name} must be positive, got {getattr(cfg, name)}")
    if cfg.n_items < cfg.n_categories:
        raise InputError("n_items must be at least n_categories")
    for name in (
        "consumable_share",
        "drift_share",
        "new_user_share",
        "new_item_share",
        "out_of_stock_share",
        "zero_event_user_share",
    ):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise InputError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    return cfg


def synthetic_shop(
    out_dir: Path,
    preset: str | ShopConfig = "tiny",
    seed: int = 42,
    string_ids: bool = False,
    **overrides: object,
) -> ShopSummary:
    """Writes the shop under out_dir; overrides replace ShopConfig fields of the preset (dataclasses.replace)."""
    cfg = _resolve_config(preset, overrides)
    out_dir = Path(out_dir)
    events_dir = out_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth").mkdir(parents=True, exist_ok=True)
    for stale in sorted(events_dir.glob("part-*.parquet")):
        stale.unlink()

    period = _build_period(cfg)
    catalog = _build_catalog(cfg, seed, period)
    scale = _session_scale(cfg, catalog, seed)
    cat_names = pa.array(_category_names(cfg.n_categories), pa.string())
    item_width = max(5, len(str(cfg.n_items - 1)))
    ids = _Ids(
        string_ids=string_ids,
        user_width=max(6, len(str(cfg.n_users - 1))),
        item_width=item_width,
        item_strings=_format_ids("i", np.arange(cfg.n_items), item_width) if string_ids else None,
    )
    _write_catalog(out_dir, catalog, cat_names, ids)

    n_chunks = -(-cfg.n_users // cfg.users_per_chunk)
    event_files: list[Path] = []
    n_events, session_offset = 0, 0
    users_writer = pq.ParquetWriter(
        out_dir / "users.parquet", _users_schema(string_ids), compression=COMPRESSION
    )
    interests_writer = pq.ParquetWriter(
        out_dir / "ground_truth" / "user_interests.parquet",
        _interests_schema(string_ids),
        compression=COMPRESSION,
    )
    try:
        for chunk in range(n_chunks):
            lo = chunk * cfg.users_per_chunk
            hi = min(cfg.n_users, lo + cfg.users_per_chunk)
            rng = np.random.default_rng([seed, 1, chunk])
            users = _build_users(cfg, catalog, period, rng, lo, hi)
            events = _simulate_chunk(cfg, catalog, period, users, rng, scale)
            table = _events_table(events, users, catalog, ids, session_offset)
            path = events_dir / f"part-{chunk:05d}.parquet"
            _write(table, path)
            event_files.append(path)
            n_events += table.num_rows
            session_offset += int(np.unique(events.session).size)
            users_writer.write_table(
                pa.Table.from_arrays(
                    [ids.users(users.ids), _ts_array(users.signup_us)],
                    schema=_users_schema(string_ids),
                )
            )
            interests_writer.write_table(_interests_table(users, cat_names, ids))
            logger.info(
                "synthetic_shop chunk %d/%d: users %d-%d, %d events (total %d)",
                chunk + 1,
                n_chunks,
                lo,
                hi - 1,
                table.num_rows,
                n_events,
            )
    finally:
        users_writer.close()
        interests_writer.close()

    logger.info(
        "synthetic_shop wrote %d events, %d users, %d items to %s",
        n_events,
        cfg.n_users,
        cfg.n_items,
        out_dir,
    )
    return ShopSummary(
        out_dir=out_dir,
        n_events=n_events,
        n_users=cfg.n_users,
        n_items=cfg.n_items,
        event_files=event_files,
    )
