"""Exploration slots by Thompson sampling from per-item Beta posteriors of conversion.

Each item's conversion (cart or purchase per view) has a Beta(a0 + conversions,
b0 + views - conversions) posterior; items younger than `new_item_days` get an optimistic
prior so they are tried. Draws are seeded per user and run: a user's uniform numbers come
from a hash of (seed, user id, item), so a rerun gives the same table and adding users does
not change anyone else's draws. A draw is the posterior's inverse CDF at the user's uniform
number, read from a table of each pool item's quantiles on a fine grid (linear in between):
a lookup instead of an incomplete-beta inversion per (user, item). Each explored row carries
its propensity: the probability, estimated by Monte Carlo with the same sampler, that Thompson
sampling puts the item in the explored slots (ignoring per-user exclusions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass
from scipy.special import betaincinv, expit, logit

from recpipe.tasks.features.snapshot_arrays import ITEM_FEATURES, SnapshotArrays

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@config_dataclass(frozen=True)
class ExploreConfig:
    """Thompson-sampling exploration: how many slots, where, and the Beta priors."""

    share: float = Field(
        0.1, ge=0, le=0.5, description="Share of slots filled by exploration; 0 disables."
    )
    positions: tuple[int, ...] | None = Field(
        None,
        description="1-based slots for explored items; default spread over the lower half "
        "of the list (below the top 10 when K is 20).",
    )
    new_item_days: float = Field(
        14.0, gt=0, description="Items younger than this get an optimistic exploration prior."
    )
    pool_size: int = Field(
        200, ge=1, description="Items eligible for exploration (by posterior mean)."
    )
    prior_a: float = Field(1.0, gt=0, description="Beta prior successes.")
    prior_b: float = Field(20.0, gt=0, description="Beta prior failures.")
    new_item_prior_a: float = Field(3.0, gt=0, description="Beta prior successes of new items.")
    seed: int = Field(0, description="Exploration seed (per user and run).")
    propensity_draws: int = Field(
        2000, ge=1, description="Draws estimating each explored row's propensity."
    )
    quantile_levels: int = Field(
        512, ge=2, description="Grid of the tabulated inverse CDFs (even in logit u)."
    )


@dataclass
class ExplorePool:
    items: np.ndarray  # snapshot item positions
    a: np.ndarray
    b: np.ndarray
    propensity: np.ndarray  # per pool item
    quantiles: np.ndarray  # (pool, levels): inverse CDF at u = (j + 0.5) / levels


def n_explore_slots(k: int, cfg: ExploreConfig) -> int:
    return int(round(k * cfg.share)) if cfg.share > 0 else 0


def explore_positions(k: int, cfg: ExploreConfig) -> np.ndarray:
    """0-based list positions for the explored items."""
    n = n_explore_slots(k, cfg)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if cfg.positions:
        pos = sorted({p - 1 for p in cfg.positions if 1 <= p <= k})[:n]
        if len(pos) < n:
            raise ValueError(f"need {n} explore positions within 1..{k}, got {cfg.positions}")
        return np.array(pos, dtype=np.int64)
    half = k // 2 if n <= k - k // 2 else 0  # the lower half, unless it cannot hold them
    return np.array([half + int((j + 0.5) * (k - half) / n) for j in range(n)], dtype=np.int64)


def explore_pool(
    snap: SnapshotArrays, allowed: np.ndarray, k: int, cfg: ExploreConfig
) -> ExplorePool:
    """Candidate items for exploration: new items first, then the least-viewed allowed items."""
    f = snap.item_feats
    views = np.nan_to_num(f[:, ITEM_FEATURES.index("n_users_all")], nan=0.0)
    age = np.nan_to_num(f[:, ITEM_FEATURES.index("age_days")], nan=0.0)
    conv = np.nan_to_num(f[:, ITEM_FEATURES.index("n_purchase_all")], nan=0.0)
    is_new = age < cfg.new_item_days
    order = np.lexsort((np.arange(snap.n_items), views, ~is_new))
    order = order[allowed[order]][: cfg.pool_size]
    a = cfg.prior_a + conv[order] + np.where(is_new[order], cfg.new_item_prior_a, 0.0)
    b = cfg.prior_b + np.maximum(views[order] - conv[order], 0.0)
    n = min(n_explore_slots(k, cfg), len(order))
    quantiles = beta_quantiles(a, b, cfg.quantile_levels)
    pool = ExplorePool(
        items=order.astype(np.int64), a=a, b=b, propensity=np.zeros(len(order)), quantiles=quantiles
    )
    if n and len(order):
        rng = np.random.default_rng(cfg.seed)
        draws = beta_draws(pool, rng.random((cfg.propensity_draws, len(order))))
        top = (
            np.argpartition(-draws, n - 1, axis=1)[:, :n]
            if n < len(order)
            else np.tile(np.arange(len(order)), (cfg.propensity_draws, 1))
        )
        # floored at one draw: an item that can be shown never has propensity 0 (1/p stays finite)
        pool.propensity = (
            np.maximum(np.bincount(top.ravel(), minlength=len(order)), 1) / cfg.propensity_draws
        )
    return pool


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def user_hashes(user_ids: np.ndarray, seed: int) -> np.ndarray:
    """A stable 64-bit hash per user id (any id type) and run seed."""
    out = np.empty(len(user_ids), dtype=np.uint64)
    for i, u in enumerate(user_ids):
        out[i] = int.from_bytes(
            hashlib.blake2b(f"{seed}|{u}".encode(), digest_size=8).digest(), "little"
        )
    return out


_TAIL = 1e-6  # draws beyond the 1e-6 and 1 - 1e-6 quantiles are held there
_LOGIT_SPAN = float(np.log((1 - _TAIL) / _TAIL))


def beta_quantiles(a: np.ndarray, b: np.ndarray, levels: int) -> np.ndarray:
    """(len(a), levels) inverse CDFs of Beta(a, b) on a grid even in logit(u) from 1e-6 to 1 - 1e-6
    (dense in the tails, where the inverse CDF bends fastest)."""
    grid = expit(np.linspace(-_LOGIT_SPAN, _LOGIT_SPAN, levels))
    return betaincinv(np.asarray(a, float)[:, None], np.asarray(b, float)[:, None], grid[None, :])


def beta_draws(pool: ExplorePool, u: np.ndarray) -> np.ndarray:
    """Posterior draws for uniforms `u` of shape (n, pool): the tabulated inverse CDFs, linearly
    interpolated in logit(u)."""
    levels, span = pool.quantiles.shape[1], _LOGIT_SPAN
    with np.errstate(divide="ignore"):
        t = logit(u)
    x = np.clip((t + span) * ((levels - 1) / (2 * span)), 0.0, levels - 1)
    j = np.minimum(x.astype(np.int64), levels - 2)
    flat = j + (np.arange(u.shape[1], dtype=np.int64) * levels)[None, :]
    q = pool.quantiles.ravel()
    lo = q[flat]
    return lo + (x - j) * (q[flat + 1] - lo)


def thompson_draws(pool: ExplorePool, user_hash: np.ndarray) -> np.ndarray:
    """(n_users, pool) posterior draws from per-(user, item) uniforms via the Beta inverse CDF."""
    with np.errstate(over="ignore"):
        z = _splitmix(user_hash[:, None] ^ _splitmix(pool.items.astype(np.uint64))[None, :])
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return beta_draws(pool, u)
