"""Train flow: point-in-time snapshots -> ALS -> candidates -> LightGBM ranker -> evaluation
against baselines -> MLflow run, registry and promotion gate.

When the training window is too thin to train a ranker, the run registers its best baseline
(by the same evaluation) instead, marked as such; the gate keeps it from replacing a trained
champion."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from recpipe.configs import eval_config, feature_config, label_grades, settings_for
from recpipe.errors import TrainingDataError
from recpipe.flows.data_dir_writer import one_writer
from recpipe.flows.run_reports import failure_report
from recpipe.flows.steps import (
    als_embeddings_task,
    baseline_evaluation_task,
    champion_score_task,
    feature_tables_task,
    first_event_task,
    interaction_labels_task,
    lake_fingerprint_task,
    markdown_artifact_task,
    model_evaluation_task,
    promotion_gate_task,
    pulled_lake_task,
    ranker_model_task,
    ranker_training_set_task,
    registered_run_task,
    run_cutoff_task,
    training_bundle_task,
    training_record_task,
    training_report_task,
    training_summary_task,
    training_windows_task,
)
from recpipe.flows.task_cache import cached_call, training_cache_files
from recpipe.params import TrainParams


@flow(name="train", log_prints=True, on_failure=[failure_report])
@one_writer("train")
def train_flow(params: TrainParams = TrainParams()) -> dict:
    """Train, evaluate and register a ranker; promote it only if it beats the champion."""
    started = datetime.now(UTC).replace(tzinfo=None)  # the MLflow run spans the training
    settings = settings_for(params.data_dir)
    lake, wh, model_name = (
        settings.lake_dir,
        settings.warehouse_path,
        settings.registered_model_name,
    )
    pulled_lake_task(lake, settings.store_config())
    windows = training_windows_task(
        lake,
        run_cutoff_task(lake, params.as_of),
        params.label_horizon_days,
        first_event_task(lake),
        params.max_train_users,
    )
    fingerprint = lake_fingerprint_task(lake)
    feat_cfg, eval_cfg, cand_cfg = feature_config(settings), eval_config(params), params.candidates

    feats = {
        snap: feature_tables_task(lake, wh, cut, snap, feat_cfg)
        for snap, cut in windows.cutoffs().items()
    }
    for snap, (start, end) in windows.label_windows().items():
        interaction_labels_task(lake, wh, snap, start, end, label_grades(settings))

    files = training_cache_files(settings.models_dir, fingerprint, windows, feat_cfg, params)
    emb, previous = {}, None
    for snap in windows.cutoffs():  # each fit after the first starts from the previous one's
        emb[snap] = cached_call(
            als_embeddings_task,
            wh,
            snap,
            seed=params.seed,
            out_path=files.als[snap],
            warm_start_path=previous,
            **params.als.model_dump(),
        )
        previous = emb[snap].path
    try:
        tset = cached_call(
            ranker_training_set_task,
            wh,
            windows.train_snapshots(),
            [emb[snap].path for snap in windows.train_snapshots()],
            cand_cfg,
            params.max_train_users,
            params.seed,
            out_path=files.training_set,
        )
    except TrainingDataError as exc:  # too thin for a ranker: serve the best baseline
        tset, ranker, fallback = None, None, str(exc)
        print(f"no ranker: {fallback}; the run serves its best baseline")
        evaluation = baseline_evaluation_task(wh, "eval", emb["eval"].path, cand_cfg, eval_cfg)
    else:
        fallback = ""
        ranker = cached_call(
            ranker_model_task,
            tset.path,
            params.ranker.model_dump(),
            params.seed,
            out_path=files.ranker,
        )
        evaluation = model_evaluation_task(
            wh, "eval", emb["eval"].path, ranker.path, cand_cfg, eval_cfg
        )

    record = training_record_task(
        evaluation,
        feats,
        emb,
        tset,
        ranker,
        fingerprint,
        windows,
        settings.data_path,
        lake,
        fallback_reason=fallback,
    )
    reports = training_report_task(
        files.run_dir,
        record.metrics,
        evaluation.curves,
        ranker.importance if ranker is not None else {},
        record.context,
        record.validation_report,
    )
    bundle = training_bundle_task(
        ranker,
        emb["serve"],
        params.model_dump(),
        record,
        reports,
        baseline=evaluation.best_baseline,
        fallback_reason=fallback,
    )
    experiment = params.experiment_name or settings.experiment_name
    champion = champion_score_task(
        settings.tracking_uri,
        model_name,
        record.eval_window,
        wh,
        emb["eval"].path,
        cand_cfg,
        eval_cfg,
        files.run_dir / "champion",
    )
    run_id, version = registered_run_task(
        bundle,
        settings.tracking_uri,
        experiment,
        model_name,
        run_name=f"train {started:%Y-%m-%d %H:%M} as_of {windows.serve:%Y-%m-%d %H:%M}",
        started_at=started,
        artifact_location=settings.artifact_location,
    )
    decision = promotion_gate_task(
        settings.tracking_uri,
        model_name,
        version,
        "ndcg_at_10",
        record.metrics.get("ndcg_at_10", float("nan")),
        champion.ndcg_at_10,
        tolerance=params.promotion_tolerance,
        force=params.force_promote,
    )
    summary = training_summary_task(
        record,
        run_id,
        version,
        model_name,
        decision,
        champion,
        experiment,
        windows.serve,
        params.model_dump(mode="json"),
    )
    markdown_artifact_task("training-metrics", summary.markdown, f"metrics of MLflow run {run_id}")
    print(f"MLflow run {run_id}: {model_name} v{version}; {decision.reason}")
    return summary.as_dict()
