"""row_value_order against np.lexsort."""

from __future__ import annotations

import numpy as np
import pytest

from recpipe.tasks.common.row_order import row_value_order


@pytest.mark.parametrize("seed", range(5))
def test_matches_lexsort(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    row = rng.integers(0, 50, n)
    tie = rng.permutation(n)  # unique tie-breakers, unsorted input
    special = rng.choice([-2.5, -0.0, 0.0, 0.1, 1.0, 3.0, 1e-30, -1e30], n)  # ties, signed zeros
    value = np.where(rng.random(n) < 0.5, special, rng.normal(size=n)).astype(np.float32)
    expected = np.lexsort((tie, -value.astype(np.float64) + 0.0, row))
    np.testing.assert_array_equal(row_value_order(row, value, tie), expected)
    np.testing.assert_array_equal(
        row_value_order(row, value, tie, descending=False),
        np.lexsort((tie, value.astype(np.float64) + 0.0, row)),
    )


def test_nan_sorts_last_and_empty_input():
    order = row_value_order(np.array([0, 0, 0, 1]), np.array([np.nan, 1.0, 2.0, 5.0]), np.arange(4))
    assert order.tolist() == [2, 1, 0, 3]
    assert len(row_value_order(np.zeros(0, int), np.zeros(0))) == 0


def test_positions_in_rows_match_searchsorted():
    from recpipe.tasks.common.row_order import positions_in_rows

    rng = np.random.default_rng(5)
    rows = np.sort(rng.integers(0, 50, size=2_000))
    np.testing.assert_array_equal(
        positions_in_rows(rows), np.arange(len(rows)) - np.searchsorted(rows, rows)
    )
    assert positions_in_rows(np.array([], dtype=np.int64)).tolist() == []
    assert positions_in_rows(np.array([7, 7, 7])).tolist() == [0, 1, 2]
