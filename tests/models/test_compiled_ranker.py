"""The compiled ranker scores exactly like LightGBM, and scoring falls back without a compiler."""

from __future__ import annotations

import numpy as np

import recpipe.tasks.models.compiled_ranker as cr
from recpipe.tasks.models.ranker_model import LambdaRanker


def _booster_file(tmp_path) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n_groups, per = 300, 20
    X = rng.normal(size=(n_groups * per, 8)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take the trees' default branches
    y = np.clip(np.round(np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + 1), 0, 3).astype(
        int
    )
    g = np.full(n_groups, per)
    names = [f"f{i}" for i in range(8)]
    split = 240 * per
    model = LambdaRanker(
        n_estimators=30, min_data_in_leaf=5, num_threads=1, compact_tolerance=0.0
    ).fit(X[:split], y[:split], g[:240], names, X[split:], y[split:], g[240:])
    path = model.save(tmp_path / "booster.lgb")
    return str(path), rng.normal(size=(5000, 8)).astype(np.float32)


def test_compiled_scores_equal_lightgbm(tmp_path):
    import lightgbm as lgb

    path, X = _booster_file(tmp_path)
    X[::7, 3] = np.nan
    lib = cr.compiled_ranker(path)
    assert lib is not None and lib.endswith(".so")
    assert cr.compiled_ranker(path) == lib  # compiled once per booster content
    compiled = cr.ranker_scorer(path, lib, num_threads=1)
    assert compiled.predictor is not None
    expected = lgb.Booster(model_file=path).predict(X)
    np.testing.assert_allclose(compiled.predict(X), expected, rtol=1e-6, atol=1e-6)
    assert compiled.feature_name() == [f"f{i}" for i in range(8)]
    assert compiled._booster is None  # scoring workers never pay LightGBM's import


def test_without_a_compiler_scoring_uses_lightgbm(tmp_path, monkeypatch, caplog):
    import lightgbm as lgb

    path, X = _booster_file(tmp_path)
    monkeypatch.setattr(cr.shutil, "which", lambda name: None)
    assert cr.compiled_ranker(path) is None
    assert "no C compiler" in caplog.text
    scorer = cr.ranker_scorer(path, None, num_threads=1)
    np.testing.assert_array_equal(scorer.predict(X), lgb.Booster(model_file=path).predict(X))
