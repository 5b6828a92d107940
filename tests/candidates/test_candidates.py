"""Candidate sources held to one contract, ALS fold-in, and `csr_row_topn` by hand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from model_helpers import build_snapshot, fit_view, ingest

from recpipe.tasks.candidates.candidate_sets import (
    SOURCES,
    CandidateConfig,
    CandidateSet,
    candidate_set,
    csr_row_topn,
)
from recpipe.tasks.features.snapshot_arrays import ITEM_FEATURES, SnapshotArrays, snapshot_arrays
from recpipe.tasks.ingest.lake_cutoffs import default_as_of
from recpipe.tasks.models.als_embeddings import ALSEmbeddings
from recpipe.tasks.models.candidate_scoring import EmbeddingView

# Small per-source sizes so that every limit binds on the tiny shop.
CFG = CandidateConfig(
    n_history=5,
    n_repeat=2,
    n_covis=7,
    n_mf=9,
    n_popular=4,
    n_trending=3,
    n_category=6,
    covis_seeds=3,
    top_categories=2,
    max_candidates=1000,
)
CAPPED = CandidateConfig(**{**CFG.__dict__, "max_candidates": 12})
LIMIT = {
    "history": CFG.n_history,
    "repeat": CFG.n_repeat,
    "covis": CFG.n_covis,
    "mf": CFG.n_mf,
    "popular": CFG.n_popular,
    "trending": CFG.n_trending,
    "category": CFG.n_category,
}


@dataclass
class World:
    snap: SnapshotArrays
    view: EmbeddingView
    users: np.ndarray  # snapshot positions, including users without any event
    user_vecs: np.ndarray
    allowed: np.ndarray
    warehouse: Path


@pytest.fixture(scope="module")
def world(tiny_shop, tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("candidates")
    lake, wh = ingest(tiny_shop / "events", root / "lake", tiny_shop), root / "warehouse.duckdb"
    build_snapshot(lake, wh, "eval", default_as_of(lake))
    all_users = pd.read_parquet(tiny_shop / "users.parquet")["user_id"].to_numpy()
    snap = snapshot_arrays(wh, "eval", extra_user_ids=all_users)
    view = fit_view(snap)
    users = np.arange(snap.n_users)
    assert np.diff(snap.interactions.indptr).min() == 0, "want users without history in the batch"
    rng = np.random.default_rng(0)
    allowed = rng.random(snap.n_items) >= 0.25
    # also mask the most popular items, so the global sources have to skip their own top
    pop = np.nan_to_num(snap.item_feats[:, ITEM_FEATURES.index("decayed_popularity")], nan=0.0)
    allowed[np.argsort(-pop)[:5]] = False
    return World(snap, view, users, view.user_vecs(snap, users), allowed, wh)


def _cands(w: World, sources: tuple[str, ...], cfg: CandidateConfig = CFG) -> CandidateSet:
    return candidate_set(
        w.snap, w.users, w.user_vecs, w.view.item_vecs, cfg, allowed=w.allowed, sources=sources
    )


def _keys(c: CandidateSet, n_items: int) -> np.ndarray:
    return c.row.astype(np.int64) * n_items + c.item


def _check_ranks(c: CandidateSet, name: str, contiguous: bool) -> None:
    """Ranks of source `name` per user: unique, start at 1 (and are 1..n when `contiguous`)."""
    has = ~np.isnan(c.ranks[name])
    df = pd.DataFrame({"row": c.row[has], "rank": c.ranks[name][has]})
    assert (df["rank"] >= 1).all() and (df["rank"] == df["rank"].round()).all(), name
    per_user = df.groupby("row")["rank"]
    assert (per_user.nunique() == per_user.size()).all(), f"{name}: repeated rank for a user"
    assert (per_user.min() == 1).all(), f"{name}: a user's ranks do not start at 1"
    if contiguous:
        assert (per_user.max() == per_user.size()).all(), f"{name}: gaps in the ranks"


@pytest.mark.parametrize("sources", [(s,) for s in SOURCES] + [SOURCES], ids=[*SOURCES, "union"])
def test_candidate_contract(world, sources):
    w = world
    c = _cands(w, sources)
    n = len(c)
    assert n > 0, f"{sources} produced no candidates on the tiny shop"
    assert len(c.row) == len(c.item) == n and c.per_user().shape == (len(w.users),)
    assert ((c.row >= 0) & (c.row < len(w.users))).all()
    assert ((c.item >= 0) & (c.item < w.snap.n_items)).all()
    keys = _keys(c, w.snap.n_items)
    assert len(np.unique(keys)) == n, "duplicate (user, item) rows"
    assert w.allowed[c.item].all(), "an item masked out by `allowed` was proposed"
    assert set(c.ranks) == set(c.scores) == set(SOURCES)
    for name in SOURCES:
        assert c.ranks[name].shape == c.scores[name].shape == (n,)
        if name not in sources:
            assert np.isnan(c.ranks[name]).all() and np.isnan(c.scores[name]).all(), name
    # every row comes from at least one requested source, with a finite score there
    present = np.stack([~np.isnan(c.ranks[s]) for s in sources])
    assert present.any(axis=0).all()
    for s in sources:
        assert np.isfinite(c.scores[s][present[sources.index(s)]]).all(), s

    if len(sources) == 1:
        (name,) = sources
        assert present.all()
        assert c.per_user().max() <= LIMIT[name], f"{name}: more than n_{name} items for a user"
        assert c.per_user().max() == LIMIT[name], f"{name}: the limit never binds (vacuous)"
        _check_ranks(c, name, contiguous=True)
    else:
        for name in SOURCES:
            _check_ranks(c, name, contiguous=False)
            assert (
                np.bincount(c.row[~np.isnan(c.ranks[name])], minlength=len(w.users)).max()
                <= LIMIT[name]
            ), name
        # uncapped, the union is exactly the union of the single sources
        single = np.concatenate([_keys(_cands(w, (s,)), w.snap.n_items) for s in SOURCES])
        np.testing.assert_array_equal(np.sort(keys), np.unique(single))
        # users without history still get the global sources
        no_hist = np.diff(w.snap.interactions.indptr)[w.users] == 0
        assert (c.per_user()[no_hist] > 0).all()
        assert np.isnan(c.ranks["history"][no_hist[c.row]]).all()
        assert np.isnan(c.ranks["mf"][no_hist[c.row]]).all()


def test_union_cap_keeps_the_best_ranked(world):
    w = world
    full, capped = _cands(w, SOURCES), _cands(w, SOURCES, CAPPED)
    cap = CAPPED.max_candidates
    assert full.per_user().max() > cap, "the cap must bind for this test to mean anything"
    np.testing.assert_array_equal(capped.per_user(), np.minimum(full.per_user(), cap))
    fk, ck = _keys(full, w.snap.n_items), _keys(capped, w.snap.n_items)
    assert np.isin(ck, fk).all() and len(np.unique(ck)) == len(ck)
    assert w.allowed[capped.item].all()
    # per user, every kept row has a best source rank <= every dropped row's
    best = np.nanmin(np.stack([full.ranks[s] for s in SOURCES]), axis=0)
    kept = np.isin(fk, ck)
    df = pd.DataFrame({"row": full.row, "best": best, "kept": kept})
    worst_kept = df[df.kept].groupby("row")["best"].max()
    best_dropped = df[~df.kept].groupby("row")["best"].min()
    both = worst_kept.index.intersection(best_dropped.index)
    assert len(both) > 0
    assert (worst_kept[both] <= best_dropped[both]).all()
    # source ranks and scores travel with their rows
    pos = pd.Index(fk).get_indexer(ck)
    for s in SOURCES:
        np.testing.assert_array_equal(capped.ranks[s], full.ranks[s][pos])
        np.testing.assert_array_equal(capped.scores[s], full.scores[s][pos])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12
    )


def test_fold_in_of_a_fitted_user_reproduces_its_factors(world):
    snap = world.snap
    emb = world.view.emb
    active = np.flatnonzero(np.diff(snap.interactions.indptr) > 0)
    folded = emb.fold_in(snap.interactions[active])
    assert folded.shape == (len(active), emb.factors) and folded.dtype == np.float32
    cos = _cosine(folded, emb.user_factors[active])
    print(f"fold-in vs fitted user factors: mean cosine {cos.mean():.4f}, min {cos.min():.4f}")
    assert cos.mean() > 0.9
    # users without events fold in to zero vectors (the mf source drops them)
    idle = np.flatnonzero(np.diff(snap.interactions.indptr) == 0)
    assert not emb.fold_in(snap.interactions[idle]).any()


def test_fold_in_gives_unseen_users_useful_factors(world):
    snap = world.snap
    counts = np.diff(snap.interactions.indptr)
    active = np.flatnonzero(counts >= 5)
    held = active[::5]  # absent from the fit
    fit_rows = np.setdiff1d(np.arange(snap.n_users), held)
    emb = ALSEmbeddings(random_state=42, num_threads=1)
    emb.fit(snap.interactions[fit_rows], snap.user_ids[fit_rows], snap.item_ids)
    assert not np.isin(snap.user_ids[held], emb.user_ids).any()
    vecs = emb.fold_in(snap.interactions[held])
    assert vecs.shape == (len(held), emb.factors)
    assert (np.linalg.norm(vecs, axis=1) > 0).all(), "an unseen user got a zero vector"
    # and they are meaningful: the user's own items score above the median item
    scores = vecs @ emb.item_factors.T
    hist = snap.interactions[held].tocoo()
    own = scores[hist.row, hist.col]
    median = np.median(scores, axis=1)[hist.row]
    share = float(np.mean(own > median))
    print(f"{len(held)} unseen users: {share:.3f} of their items score above their median item")
    assert share > 0.8  # measured 0.929 (random: 0.5)


def test_embeddings_save_load_round_trip(world, tmp_path):
    emb = world.view.emb
    back = ALSEmbeddings.load(emb.save(tmp_path / "als.npz"))
    for name in ("user_factors", "item_factors", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(emb, name))
    assert (back.factors, back.regularization, back.iterations, back.alpha, back.random_state) == (
        emb.factors,
        emb.regularization,
        emb.iterations,
        emb.alpha,
        emb.random_state,
    )
    m = world.snap.interactions[:20]
    np.testing.assert_allclose(back.fold_in(m), emb.fold_in(m), rtol=1e-6, atol=1e-6)


def test_csr_row_topn_golden():
    # rows: a tie (3.0 at cols 1 and 3: lower column first) and a stored zero; a row with only
    # a stored zero; fewer entries than n; a negative value (an entry, ranked last)
    rows = [0, 0, 0, 0, 0, 0, 1, 2, 2, 3, 3]
    cols = [1, 2, 3, 4, 0, 0, 4, 0, 3, 2, 0]
    vals = [3.0, 1.0, 3.0, 0.5, 0.0, 0.0, 0.0, 5.0, 2.0, 7.0, -1.0]
    m = sp.csr_matrix((vals, (rows, cols)), shape=(4, 5), dtype=np.float32)
    m.sum_duplicates()
    assert m.nnz == 10 and m[1, 4] == 0  # stored zeros are there
    dense = m.toarray()
    top = csr_row_topn(m, 3)
    got = list(
        zip(top.row.tolist(), top.item.tolist(), top.rank.tolist(), top.score.tolist(), strict=True)
    )
    assert got == [
        (0, 1, 1.0, 3.0),
        (0, 3, 2.0, 3.0),
        (0, 2, 3.0, 1.0),
        (2, 0, 1.0, 5.0),
        (2, 3, 2.0, 2.0),
        (3, 2, 1.0, 7.0),
        (3, 0, 2.0, -1.0),
    ]
    assert top.row.dtype == np.int32 and top.item.dtype == np.int32
    assert top.rank.dtype == np.float32 and top.score.dtype == np.float32
    one = csr_row_topn(sp.csr_matrix(dense), 1)
    assert list(zip(one.row.tolist(), one.item.tolist(), strict=True)) == [(0, 1), (2, 0), (3, 2)]
    empty = csr_row_topn(sp.csr_matrix((3, 4), dtype=np.float32), 5)
    assert len(empty.row) == len(empty.item) == 0


@pytest.mark.parametrize("n, block_bytes", [(8, 64 << 20), (8, 4 * 200 * 7), (250, 64 << 20)])
def test_mf_topn_matches_brute_force_with_exclusions(n, block_bytes):
    # users whose excluded items crowd the top of their scores (more than n of them) must still
    # get their best allowed items; scores are computed in blocks of users (7 users in the
    # second case), and n = 250 > 200 items takes every allowed item. All match brute force.
    from recpipe.tasks.candidates.candidate_sets import mf_topn

    rng = np.random.default_rng(3)
    n_users, n_items = 60, 200
    U = rng.normal(size=(n_users, 6)).astype(np.float32)
    V = rng.normal(size=(n_items, 6)).astype(np.float32)
    U[5] = 0.0  # no history, no vector: no MF candidates
    scores = U @ V.T
    allowed = rng.random(n_items) > 0.1
    excl = np.zeros((n_users, n_items), dtype=bool)
    for u in range(n_users):
        if u % 3 == 0:  # crowd: the user's 24 best allowed items are excluded
            best = [i for i in np.argsort(-scores[u], kind="stable") if allowed[i]][:24]
            excl[u, best] = True
        else:
            excl[u, rng.choice(n_items, 5, replace=False)] = True
    got = mf_topn(U, V, n, sp.csr_matrix(excl.astype(np.float32)), allowed, block_bytes=block_bytes)
    for u in range(n_users):
        mine = got.item[got.row == u]
        if u == 5:
            assert len(mine) == 0
            continue
        ok = allowed & ~excl[u]
        order = [i for i in np.argsort(-scores[u], kind="stable") if ok[i]][:n]
        assert len(mine) == len(order) == min(n, ok.sum())
        np.testing.assert_allclose(scores[u, mine], scores[u, order], rtol=1e-5)
        assert got.rank[got.row == u].tolist() == list(range(1, len(order) + 1))
        assert not excl[u, mine].any() and allowed[mine].all()


def test_loading_only_some_users_gives_their_rows_of_the_full_snapshot(world, tmp_path):
    """Training and evaluation load only their sampled users: each of those users' features,
    history and affinities must equal the full snapshot's, and items stay whole."""
    from recpipe.tasks.features.snapshot_arrays import snapshot_item_ids, snapshot_user_ids

    full, warehouse = world.snap, world.warehouse
    known = snapshot_user_ids(warehouse, "eval")
    assert set(known) <= set(full.user_ids) and len(known) > 20
    some = np.random.default_rng(1).choice(known, 15, replace=False)
    part = snapshot_arrays(warehouse, "eval", only_user_ids=some)
    assert sorted(part.user_ids) == sorted(some)
    np.testing.assert_array_equal(part.item_ids, full.item_ids)
    np.testing.assert_array_equal(snapshot_item_ids(warehouse, "eval"), full.item_ids)
    rows = full.user_index(part.user_ids)
    np.testing.assert_array_equal(part.user_feats, full.user_feats[rows])
    assert (part.interactions != full.interactions[rows]).nnz == 0
    assert (part.affinity != full.affinity[rows]).nnz == 0
    for u in range(part.n_users):
        a = slice(part.interactions.indptr[u], part.interactions.indptr[u + 1])
        b = slice(full.interactions.indptr[rows[u]], full.interactions.indptr[rows[u] + 1])
        np.testing.assert_array_equal(part.ui_feats[a], full.ui_feats[b])
