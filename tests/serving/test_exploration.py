"""Thompson draws from the tabulated Beta inverse CDFs against scipy's exact inversion."""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import betaincinv

from recpipe.tasks.serving.exploration import (
    ExplorePool,
    beta_draws,
    beta_quantiles,
    thompson_draws,
    user_hashes,
)

LEVELS = 512


def _pool(a: np.ndarray, b: np.ndarray) -> ExplorePool:
    return ExplorePool(
        items=np.arange(len(a), dtype=np.int64),
        a=a,
        b=b,
        propensity=np.full(len(a), 0.1),
        quantiles=beta_quantiles(a, b, LEVELS),
    )


def test_tabulated_draws_match_exact_inverse_cdf():
    # posteriors from the explore prior: few views (wide) to many views (narrow)
    a = np.array([1.0, 4.0, 1.0, 31.0, 2.0])
    b = np.array([20.0, 20.0, 2000.0, 520.0, 21.0])
    pool = _pool(a, b)
    u = np.random.default_rng(0).random((20_000, len(a)))
    exact = betaincinv(a[None, :], b[None, :], u)
    got = beta_draws(pool, u)
    inner = (u > 1e-6) & (u < 1 - 1e-6)  # tails beyond are held at the last grid point
    assert np.all(
        np.abs(got - exact)[inner] <= 1e-3 * np.broadcast_to(exact.max(axis=0), u.shape)[inner]
    )
    # and they are Beta(a, b) distributed
    for j in range(len(a)):
        assert stats.kstest(got[:, j], stats.beta(a[j], b[j]).cdf).pvalue > 0.01


def test_thompson_draws_are_seeded_per_user_and_run():
    pool = _pool(np.array([1.0, 2.0, 3.0]), np.array([20.0, 30.0, 40.0]))
    ids = np.array(["u1", "u2", "u3"], dtype=object)
    d = thompson_draws(pool, user_hashes(ids, seed=1))
    np.testing.assert_array_equal(d[1:], thompson_draws(pool, user_hashes(ids[1:], seed=1)))
    assert not np.allclose(d, thompson_draws(pool, user_hashes(ids, seed=2)))
    assert ((d >= 0) & (d <= 1)).all()
