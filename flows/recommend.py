"""Recommend flow: serve snapshot as of the cutoff -> champion model -> sharded scoring ->
checks -> atomic publish of a new version of the per-user table."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from recpipe.configs import feature_config, recommend_config, settings_for, shard_runner
from recpipe.flows.data_dir_writer import one_writer
from recpipe.flows.run_reports import failure_report
from recpipe.flows.shard_runners import (
    scored_shards,
    scoring_workers,
    shard_count,
    threads_per_worker,
)
from recpipe.flows.steps import (
    checked_version_task,
    default_list_task,
    discarded_shard_inputs_task,
    exclusion_list_task,
    feature_tables_task,
    markdown_artifact_task,
    mirrored_version_task,
    pulled_lake_task,
    recommend_summary_task,
    run_cutoff_task,
    scoring_model_task,
    scoring_scope_task,
    shard_inputs_task,
    user_recommendations_task,
)
from recpipe.params import RecommendParams
from recpipe.tasks.serving.recommendation_publishing import DEFAULT_LIST_FILE, pending_version


@flow(name="recommend", log_prints=True, on_failure=[failure_report])
@one_writer("recommend")
def recommend_flow(params: RecommendParams = RecommendParams()) -> dict:
    """Score every user with the chosen registered model and publish a new table version."""
    settings = settings_for(params.data_dir)
    lake, wh, recs_dir = settings.lake_dir, settings.warehouse_path, settings.recommendations_dir
    pulled_lake_task(lake, settings.store_config())
    as_of = run_cutoff_task(lake, params.as_of)
    feature_tables_task(lake, wh, as_of, "serve", feature_config(settings))
    model = scoring_model_task(
        settings.tracking_uri,
        settings.registered_model_name,
        params.model_version,
        settings.models_dir / "scoring",
    )
    exclude = exclusion_list_task(params.exclude_items_file)
    runner, dask_address = shard_runner(params, settings)
    workers = scoring_workers(params.workers, runner)
    cfg = recommend_config(
        params, exclude, threads=threads_per_worker(workers), candidates=model.candidates
    )
    scope = scoring_scope_task(wh, params.top_k, exclude)
    n_shards = shard_count(scope.n_users, params.n_shards, params.shard_users, workers)
    generated_at = datetime.now(UTC).replace(tzinfo=None)
    inputs = shard_inputs_task(wh, n_shards)
    with pending_version(recs_dir) as (version, version_dir):  # removed again if anything fails
        shards, scoring_seconds = scored_shards(
            user_recommendations_task,
            workers,
            [
                {
                    "warehouse": wh,
                    "shard": shard,
                    "n_shards": n_shards,
                    "booster_path": model.booster_path,
                    "mf_path": model.mf_path,
                    "cfg": cfg,
                    "model_version": model.version,
                    "run_id": model.run_id,
                    "generated_at": generated_at,
                    "out_path": str(version_dir / f"part-{shard:04d}.parquet"),
                    "ranker_lib": model.ranker_lib,
                    "baseline": model.baseline,
                    "shard_inputs": inputs,
                }
                for shard in range(n_shards)
            ],
            runner,
            dask_address,
        )
        discarded_shard_inputs_task(inputs)
        default_list_task(
            wh, cfg, model.version, model.run_id, generated_at, str(version_dir / DEFAULT_LIST_FILE)
        )
        published = checked_version_task(
            recs_dir,
            version,
            wh,
            scope.blocked_items,
            scope.k,
            scope.n_users,
            params.retention,
            params.allow_shrink,
        )
    mirrored_version_task(recs_dir, published.version, settings.store_config())
    summary = recommend_summary_task(
        shards,
        scope,
        model,
        published,
        settings.registered_model_name,
        as_of,
        scoring_seconds,
        workers,
        runner,
    )
    markdown_artifact_task("recommendations", summary.markdown, "published recommendation version")
    print(summary.markdown)
    return summary.as_dict()
