"""`snapshot_matrix` (what ALS reads, built by DuckDB's join and sort) against the matrix
`snapshot_arrays` builds in numpy from the same snapshot: the same users, items and entries."""

from __future__ import annotations

import numpy as np
import pytest
from recs_helpers import FEATURES, ingest_shop

from recpipe.tasks.features.feature_tables import feature_tables
from recpipe.tasks.features.snapshot_arrays import snapshot_arrays, snapshot_matrix
from recpipe.tasks.ingest.lake_cutoffs import default_as_of
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop


@pytest.mark.parametrize("string_ids", [False, True], ids=["integer_ids", "string_ids"])
def test_snapshot_matrix_is_the_matrix_snapshot_arrays_builds(tmp_path, string_ids):
    shop = tmp_path / "shop"
    synthetic_shop(shop, "tiny", seed=5, string_ids=string_ids)
    lake = ingest_shop(shop, tmp_path / "lake")
    wh = tmp_path / "warehouse.duckdb"
    feature_tables(lake, wh, default_as_of(lake), "serve", FEATURES)

    got = snapshot_matrix(wh, "serve")
    want = snapshot_arrays(wh, "serve")

    assert got.matrix.nnz > 1000
    assert got.user_ids.tolist() == want.user_ids.tolist()
    assert got.item_ids.tolist() == want.item_ids.tolist()
    assert got.as_of == want.as_of
    assert got.matrix.shape == want.interactions.shape
    assert got.matrix.has_sorted_indices
    np.testing.assert_array_equal(got.matrix.indptr, want.interactions.indptr)
    np.testing.assert_array_equal(got.matrix.indices, want.interactions.indices)
    np.testing.assert_array_equal(got.matrix.data, want.interactions.data)
    assert got.matrix.data.dtype == np.float32
