"""MLflow registry round trips against a real sqlite store, plus the report figures."""

from __future__ import annotations

import os

for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}.items():
    os.environ.setdefault(_key, _value)

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from recpipe.tasks.evaluation.report_figures import (  # noqa: E402
    evaluation_report_md,
    feature_importance_png,
    metric_curves_png,
    metrics_markdown,
)
from recpipe.tasks.registry.model_registry import (  # noqa: E402
    ModelLookupError,
    TrainedBundle,
    champion_info,
    default_artifact_location,
    load_model_version,
    log_training_run,
    promotion_gate,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FEATURES = ["als_score", "item_pop_7d", "user_n_events", "price_rel", "recency_days"]

METRICS = {
    "ndcg_at_10": 0.15,
    "recall_at_20": 0.31,
    "map_at_10": 0.08,
    "precision_at_10": 0.05,
    "hit_rate_at_10": 0.4,
    "mrr": 0.21,
    "baseline.popularity.ndcg_at_10": 0.1,
    "baseline.popularity.recall_at_20": 0.2,
    "baseline.item.knn.ndcg_at_10": 0.12,
    "segment.cold.ndcg_at_10": 0.07,
    "segment.warm.ndcg_at_10": 0.18,
    "candidates.recall_at_200": 0.66,
    "lift.ndcg_at_10_over_best_baseline": 0.25,
    "timing.train_seconds": 12.5,
}


@dataclass
class Files:
    booster_path: Path
    mf_path: Path
    reports: list[Path]
    X: np.ndarray
    gains: np.ndarray


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    import lightgbm as lgb

    out = tmp_path_factory.mktemp("bundle")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, len(FEATURES)))
    y = np.clip((X[:, 0] * 1.5 + rng.normal(scale=0.5, size=300)).round(), 0, 3).astype(int)
    booster = lgb.train(
        {
            "objective": "lambdarank",
            "num_leaves": 7,
            "min_data_in_leaf": 5,
            "verbose": -1,
            "num_threads": 1,
            "seed": 1,
        },
        lgb.Dataset(X, y, group=[10] * 30, feature_name=FEATURES),
        num_boost_round=15,
    )
    booster_path = out / "ranker.txt"
    booster.save_model(str(booster_path))
    mf_path = out / "mf_factors.npz"
    np.savez(
        mf_path,
        user_factors=rng.normal(size=(20, 8)).astype(np.float32),
        item_factors=rng.normal(size=(30, 8)).astype(np.float32),
        user_ids=np.arange(20),
        item_ids=np.array([f"sku-{i}" for i in range(30)]),
    )
    gains = booster.feature_importance(importance_type="gain")
    png = feature_importance_png(FEATURES, gains, out / "importance.png")
    md = evaluation_report_md(METRICS, out / "report.md", "Eval", {"as_of": "2026-11-01"})
    return Files(booster_path, mf_path, [png, md], X, gains)


def make_bundle(files: Files, ndcg: float, **extra_params) -> TrainedBundle:
    metrics = dict(METRICS, ndcg_at_10=ndcg)
    return TrainedBundle(
        booster_path=files.booster_path,
        mf_path=files.mf_path,
        feature_names=list(FEATURES),
        params={
            "ranker": {"num_leaves": 7, "objective": "lambdarank"},
            "als.factors": 8,
            "windows": [28, 7],
            **extra_params,
        },
        metrics=metrics,
        tags={"as_of": "2026-11-01", "data_fingerprint": "abc123", "eval_window": "7d"},
        artifacts=list(files.reports),
    )


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return f"sqlite:///{db}"


def test_default_artifact_location():
    assert default_artifact_location("sqlite:////a/b/mlflow.db") == "file:///a/b/artifacts"
    assert default_artifact_location("http://127.0.0.1:5000") is None


def test_logged_run_has_params_metrics_tags_artifacts(files, tracking_uri):
    from mlflow import MlflowClient

    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    bundle = make_bundle(files, 0.15, long_value="x" * 7000)
    run_id, version = log_training_run(
        bundle, tracking_uri, "recpipe-test", model_name="logged", run_name="train-2026-11-01"
    )
    assert version == "1"
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before  # global state restored

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "train-2026-11-01"
    assert run.info.artifact_uri.startswith(default_artifact_location(tracking_uri))
    params = run.data.params
    assert params["ranker.num_leaves"] == "7"
    assert params["als.factors"] == "8"
    assert params["windows"] == "[28, 7]"
    assert 0 < len(params["long_value"]) <= 6000
    metrics = run.data.metrics
    assert metrics["ndcg_at_10"] == pytest.approx(0.15)
    assert metrics["baseline.popularity.ndcg_at_10"] == pytest.approx(0.1)
    assert metrics["segment.cold.ndcg_at_10"] == pytest.approx(0.07)
    assert metrics["timing.train_seconds"] == pytest.approx(12.5)
    tags = run.data.tags
    assert tags["data_fingerprint"] == "abc123"
    assert tags["as_of"] == "2026-11-01"

    top = {f.path for f in client.list_artifacts(run_id)}
    assert {"reports", "mf", "feature_names.json"} <= top
    assert {f.path for f in client.list_artifacts(run_id, "reports")} == {
        "reports/importance.png",
        "reports/report.md",
    }
    assert [f.path for f in client.list_artifacts(run_id, "mf")] == ["mf/mf_factors.npz"]

    mv = client.get_model_version("logged", "1")
    assert mv.run_id == run_id
    logged_model = client.get_logged_model(mv.source.removeprefix("models:/"))
    assert logged_model.experiment_id == run.info.experiment_id  # not the default experiment
    assert str(logged_model.status) in ("READY", "LoggedModelStatus.READY")
    assert logged_model.artifact_location.startswith(default_artifact_location(tracking_uri))
    assert champion_info(tracking_uri, "logged") is None  # registered, no alias yet
    assert champion_info(tracking_uri, "no-such-model") is None


def test_promotion_sequence(files, tracking_uri):
    from mlflow import MlflowClient

    name = "promo"
    client = MlflowClient(tracking_uri)

    def log(ndcg: float) -> str:
        return log_training_run(make_bundle(files, ndcg), tracking_uri, "recpipe-test", name)[1]

    v1 = log(0.15)
    d1 = promotion_gate(tracking_uri, name, v1, "ndcg_at_10", 0.15, None)
    assert (d1.promoted, d1.alias, d1.champion_version) == (True, "champion", None)
    assert champion_info(tracking_uri, name).version == v1

    v2 = log(0.12)
    champ = champion_info(tracking_uri, name)
    d2 = promotion_gate(tracking_uri, name, v2, "ndcg_at_10", 0.12, champ.metrics["ndcg_at_10"])
    assert (d2.promoted, d2.alias, d2.champion_version) == (False, "challenger", v1)
    assert "0.1200" in d2.reason and "0.1500" in d2.reason and "challenger" in d2.reason
    assert str(client.get_model_version_by_alias(name, "challenger").version) == v2
    assert str(client.get_model_version_by_alias(name, "champion").version) == v1
    mv2 = client.get_model_version(name, v2)
    assert mv2.tags["promotion.promoted"] == "false"
    assert mv2.tags["promotion.reason"] == d2.reason
    run2 = client.get_run(mv2.run_id)
    assert run2.data.tags["promotion.promoted"] == "false"
    assert run2.data.tags["promotion.reason"] == d2.reason

    v3 = log(0.16)  # champion metric looked up from the champion run when not given
    d3 = promotion_gate(tracking_uri, name, v3, "ndcg_at_10", 0.16, None)
    assert d3.promoted and d3.champion_metric == pytest.approx(0.15)
    assert champion_info(tracking_uri, name).version == v3
    assert client.get_model_version(name, v3).tags["promotion.promoted"] == "true"

    v4 = log(0.155)
    strict = promotion_gate(tracking_uri, name, v4, "ndcg_at_10", 0.155, 0.16)
    assert not strict.promoted
    assert str(client.get_model_version_by_alias(name, "challenger").version) == v4
    tolerant = promotion_gate(tracking_uri, name, v4, "ndcg_at_10", 0.155, 0.16, tolerance=0.01)
    assert tolerant.promoted and tolerant.champion_version == v3
    assert "tolerance 0.0100" in tolerant.reason
    assert str(client.get_model_version_by_alias(name, "champion").version) == v4
    aliases = {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    assert aliases == {"champion": v4}  # challenger alias cleared on promotion

    v5 = log(0.05)
    forced = promotion_gate(tracking_uri, name, v5, "ndcg_at_10", 0.05, 0.155, force=True)
    assert forced.promoted and forced.reason.startswith("forced")
    info = champion_info(tracking_uri, name)
    assert info.version == v5
    assert info.metrics["ndcg_at_10"] == pytest.approx(0.05)
    assert info.tags["promotion.promoted"] == "true"
    assert info.params["ranker.num_leaves"] == "7"

    with pytest.raises(ModelLookupError, match="promo"):
        promotion_gate(tracking_uri, name, "99", "ndcg_at_10", 0.5, None)


def test_load_model_version_round_trip(files, tracking_uri, tmp_path):
    import lightgbm as lgb

    name = "loadme"
    run_id, version = log_training_run(make_bundle(files, 0.2), tracking_uri, "recpipe-load", name)
    promotion_gate(tracking_uri, name, version, "ndcg_at_10", 0.2, None)

    loaded = load_model_version(tracking_uri, name, "champion", tmp_path / "dl")
    assert (loaded.version, loaded.run_id) == (version, run_id)
    original = lgb.Booster(model_file=str(files.booster_path))
    np.testing.assert_array_equal(loaded.booster.predict(files.X), original.predict(files.X))
    assert loaded.mf_path.read_bytes() == files.mf_path.read_bytes()
    assert loaded.mf_path.is_relative_to(tmp_path / "dl")
    assert loaded.feature_names == FEATURES
    assert loaded.params["als.factors"] == "8"
    assert loaded.tags["data_fingerprint"] == "abc123"
    assert loaded.metrics["ndcg_at_10"] == pytest.approx(0.2)
    assert "champion" in loaded.aliases

    by_number = load_model_version(tracking_uri, name, version, tmp_path / "dl2")
    assert by_number.run_id == run_id

    with pytest.raises(ModelLookupError, match=r"loadme.*challenger"):
        load_model_version(tracking_uri, name, "challenger", tmp_path / "dl3")
    with pytest.raises(ModelLookupError, match="nope"):
        load_model_version(tracking_uri, "nope", "champion", tmp_path / "dl4")
    with pytest.raises(ModelLookupError, match="version 42"):
        load_model_version(tracking_uri, name, "42", tmp_path / "dl5")


def test_nothing_written_to_cwd(files, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.chdir(cwd)
    uri = f"sqlite:///{store / 'mlflow.db'}"

    _, version = log_training_run(make_bundle(files, 0.1), uri, "fresh", "fresh-model")
    promotion_gate(uri, "fresh-model", version, "ndcg_at_10", 0.1, None)
    load_model_version(uri, "fresh-model", "champion", tmp_path / "dl")
    champion_info(uri, "fresh-model")

    assert list(cwd.iterdir()) == []
    assert (store / "artifacts" / "models").is_dir()


def test_figures_and_markdown(files, tmp_path):
    png = feature_importance_png(FEATURES, files.gains, tmp_path / "a" / "imp.png", top=3)
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 1000

    curves = {
        "ranker": {5: 0.1, 10: 0.15, 20: 0.18},
        "baseline.popularity": {5: 0.05, 10: 0.1, 20: 0.12},
    }
    png2 = metric_curves_png(curves, tmp_path / "curves.png")
    assert png2.read_bytes().startswith(PNG_MAGIC) and png2.stat().st_size > 1000

    with pytest.raises(ValueError):
        feature_importance_png(FEATURES, files.gains[:2], tmp_path / "bad.png")

    context = {"as_of": "2026-11-01", "data fingerprint": "abc123", "run id": "r1"}
    md_path = evaluation_report_md(METRICS, tmp_path / "r" / "report.md", "Ranker eval", context)
    md = md_path.read_text(encoding="utf-8")
    assert md == metrics_markdown(METRICS, "Ranker eval", context)
    assert md.startswith("# Ranker eval")
    assert "- **as_of**: 2026-11-01" in md
    assert (
        "| model | ndcg_at_10 | recall_at_20 | map_at_10 | precision_at_10 | hit_rate_at_10 | mrr |"
        in md
    )
    assert "| ranker | 0.1500 | 0.3100 | 0.0800 | 0.0500 | 0.4000 | 0.2100 |" in md
    assert "| popularity | 0.1000 | 0.2000 | – | – | – | – |" in md
    assert "| item.knn | 0.1200 |" in md
    assert "| cold | 0.0700 |" in md and "| warm | 0.1800 |" in md
    assert "| recall_at_200 | 0.6600 |" in md
    assert "Lift" in md and "0.2500" in md
    assert "timing.train_seconds" in md


def baseline_bundle(files: Files, ndcg: float) -> TrainedBundle:
    bundle = make_bundle(files, ndcg)
    bundle.booster_path, bundle.feature_names = None, []
    bundle.baseline, bundle.fallback_reason = "buy_again", "only 0 users: too little data"
    return bundle


def test_a_baseline_fallback_is_registered_but_never_replaces_a_trained_champion(
    files, tracking_uri, tmp_path
):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    name = "fallback"
    _, v1 = log_training_run(baseline_bundle(files, 0.10), tracking_uri, "recpipe-test", name)
    first = promotion_gate(tracking_uri, name, v1, "ndcg_at_10", 0.10, None)
    assert first.promoted  # no champion yet: a baseline is better than no table
    loaded = load_model_version(tracking_uri, name, v1, tmp_path)
    assert loaded.booster is None and loaded.baseline == "buy_again"
    assert loaded.tags["recpipe.model_kind"] == "baseline"
    assert "too little data" in loaded.tags["recpipe.fallback_reason"]

    _, v2 = log_training_run(make_bundle(files, 0.08), tracking_uri, "recpipe-test", name)
    ranker = promotion_gate(tracking_uri, name, v2, "ndcg_at_10", 0.12, 0.10)
    assert ranker.promoted  # a trained ranker that beats the baseline champion replaces it

    _, v3 = log_training_run(baseline_bundle(files, 0.5), tracking_uri, "recpipe-test", name)
    kept = promotion_gate(tracking_uri, name, v3, "ndcg_at_10", 0.5, 0.12)
    assert not kept.promoted and kept.alias == "challenger"
    assert "baseline fallback" in kept.reason and "trained ranker" in kept.reason
    assert champion_info(tracking_uri, name).version == v2
    assert client.get_model_version(name, v3).tags["promotion.promoted"] == "false"
