"""ALS warm start: factors carried over by id, and a few sweeps from the previous snapshot's
fit reach the loss a fit from scratch needs many sweeps for."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import THREADS, build_snapshot, ingest

from recpipe.tasks.features.snapshot_arrays import snapshot_arrays
from recpipe.tasks.ingest.lake_cutoffs import default_as_of
from recpipe.tasks.models.als_embeddings import ALSEmbeddings, _aligned


def test_aligned_carries_factors_by_id():
    rng = np.random.default_rng(0)
    old = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = _aligned(
        old,
        np.array(["a", "b", "c", "d"], dtype=object),
        np.array(["d", "x", "b"], dtype=object),
        rng,
    )
    np.testing.assert_array_equal(out[0], old[3])
    np.testing.assert_array_equal(out[2], old[1])
    assert (0 <= out[1]).all() and (out[1] < 0.01).all()  # unknown id: ALS's small random init


@pytest.fixture(scope="module")
def snaps(tiny_shop, tmp_path_factory):
    root = tmp_path_factory.mktemp("als_warm")
    lake, wh = ingest(tiny_shop / "events", root / "lake", tiny_shop), root / "warehouse.duckdb"
    as_of = default_as_of(lake)
    for name in ("train", "eval"):
        build_snapshot(lake, wh, name, as_of)
    return snapshot_arrays(wh, "train"), snapshot_arrays(wh, "eval")


def _loss(emb: ALSEmbeddings, snap) -> float:
    from implicit.cpu.als import calculate_loss

    return float(
        calculate_loss(
            (emb.alpha * snap.interactions).astype(np.float32).tocsr(),
            emb.user_factors,
            emb.item_factors,
            emb.regularization,
            num_threads=THREADS,
        )
    )


def test_warm_start_reaches_a_full_fit_in_few_sweeps(snaps):
    train, ev = snaps
    assert ev.n_users > train.n_users  # the later snapshot has users the earlier fit never saw

    def fit(snap, iterations, init=None):
        return ALSEmbeddings(iterations=iterations, random_state=42, num_threads=THREADS).fit(
            snap.interactions, snap.user_ids, snap.item_ids, init=init
        )

    previous = fit(train, 10)
    warm, short, full = fit(ev, 3, previous), fit(ev, 3), fit(ev, 10)
    losses = {
        name: _loss(m, ev)
        for name, m in (("warm3", warm), ("scratch3", short), ("scratch10", full))
    }
    print(losses)
    assert losses["warm3"] < losses["scratch3"]
    assert losses["warm3"] <= 1.02 * losses["scratch10"]
    with pytest.raises(ValueError, match="warm start from 48 factors into 8"):
        ALSEmbeddings(factors=8).fit(ev.interactions, ev.user_ids, ev.item_ids, init=previous)
