"""Train flow: point-in-time snapshots -> ALS -> candidates -> LightGBM ranker -> evaluation
against baselines -> MLflow run, registry and promotion gate."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import flow

from flows.steps import (
    als_embeddings_task,
    champion_score_task,
    default_as_of_task,
    feature_tables_task,
    interaction_labels_task,
    lake_fingerprint_task,
    markdown_artifact_task,
    model_evaluation_task,
    promotion_gate_task,
    ranker_model_task,
    ranker_training_set_task,
    registered_run_task,
    training_record_task,
    training_report_task,
)
from recpipe.params import TrainParams
from recpipe.settings import Settings
from tasks.candidate_sets import CandidateConfig
from tasks.feature_tables import FeatureConfig
from tasks.model_registry import TrainedBundle, flatten_params
from tasks.offline_evaluation import EvalConfig
from tasks.ranking_labels import DEFAULT_GRADES
from tasks.report_figures import metrics_markdown
from tasks.task_cache import cached_call, config_hash


@flow(name="train", log_prints=True)
def train_flow(params: TrainParams = TrainParams()) -> dict:
    """Train, evaluate and register a ranker; promote it only if it beats the champion."""
    settings = Settings(**({"data_dir": params.data_dir} if params.data_dir else {}))
    lake, wh = settings.lake_dir, settings.warehouse_path
    as_of = params.as_of or default_as_of_task(lake)
    h = timedelta(days=params.label_horizon_days)
    t_train, t_eval = as_of - 2 * h, as_of - h
    fingerprint = lake_fingerprint_task(lake)
    feat_cfg = FeatureConfig(event_weights=settings.event_weights, half_life_days=settings.half_life_days)
    cand_cfg = CandidateConfig(**params.candidates.model_dump())
    eval_cfg = EvalConfig(cold_max_events=params.cold_max_events, heavy_min_events=params.heavy_min_events,
                          max_users=params.max_eval_users, seed=params.seed)
    grades = {t: DEFAULT_GRADES.get(t, 1) for t in settings.event_types}

    feats = {snap: feature_tables_task(lake, wh, cut, snap, feat_cfg)
             for snap, cut in (("train", t_train), ("eval", t_eval), ("serve", as_of))}
    interaction_labels_task(lake, wh, "train", t_train, t_eval, grades)
    interaction_labels_task(lake, wh, "eval", t_eval, as_of, grades)

    cache = settings.models_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    base_key = [fingerprint, as_of, params.label_horizon_days, feat_cfg.__dict__]
    emb, key, previous = {}, None, None
    for snap in ("train", "eval", "serve"):  # eval and serve start from the previous snapshot's fit
        key = config_hash(base_key, snap, params.als.model_dump(), params.seed, key)
        emb[snap] = cached_call(als_embeddings_task, wh, snap, seed=params.seed,
                                out_path=str(cache / f"als-{key}.npz"), warm_start_path=previous,
                                **params.als.model_dump())
        previous = emb[snap].path
    ts_key = config_hash(base_key, params.als.model_dump(), params.candidates.model_dump(),
                         params.max_train_users, params.seed)
    tset = cached_call(ranker_training_set_task, wh, "train", emb["train"].path, cand_cfg,
                       params.max_train_users, params.seed, out_path=str(cache / f"trainset-{ts_key}.npz"))
    rk_key = config_hash(ts_key, params.ranker.model_dump())
    ranker = cached_call(ranker_model_task, tset.path, params.ranker.model_dump(), params.seed,
                         out_path=str(cache / f"ranker-{rk_key}.lgb"))
    evaluation = model_evaluation_task(wh, "eval", emb["eval"].path, ranker.path, cand_cfg, eval_cfg)

    record = training_record_task(evaluation, feats, emb, tset, ranker, fingerprint, as_of, t_train,
                                  t_eval, settings.data_path, lake)
    metrics, context, eval_window = record.metrics, record.context, record.eval_window
    run_dir = settings.models_dir / "runs" / config_hash(rk_key, eval_window)
    files = training_report_task(run_dir, metrics, evaluation.curves, ranker.importance, context,
                                 record.validation_report)
    bundle = TrainedBundle(booster_path=Path(ranker.path), mf_path=Path(emb["serve"].path),
                           feature_names=list(ranker.importance), params=flatten_params(params.model_dump()),
                           metrics=metrics, tags=record.tags, artifacts=[Path(f) for f in files])
    experiment = params.experiment_name or settings.experiment_name
    champion = champion_score_task(settings.tracking_uri, settings.registered_model_name, eval_window, wh,
                                   emb["eval"].path, cand_cfg, eval_cfg, run_dir / "champion")
    run_id, version = registered_run_task(bundle, settings.tracking_uri, experiment,
                                          settings.registered_model_name)
    decision = promotion_gate_task(settings.tracking_uri, settings.registered_model_name, version,
                                   "ndcg_at_10", metrics["ndcg_at_10"], champion.ndcg_at_10,
                                   tolerance=params.promotion_tolerance, force=params.force_promote)
    context.update({"MLflow run": run_id, "model version": f"{settings.registered_model_name} v{version}",
                    "promotion": decision.reason, "champion score": champion.how})
    markdown_artifact_task("training-metrics", metrics_markdown(metrics, "recpipe training run", context),
                           f"metrics of MLflow run {run_id}")
    print(f"MLflow run {run_id}: {settings.registered_model_name} v{version}; {decision.reason}")
    return {"run_id": run_id, "version": version, "promoted": decision.promoted, "reason": decision.reason,
            "metrics": metrics, "as_of": as_of, "experiment": experiment}
