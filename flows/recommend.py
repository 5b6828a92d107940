"""Recommend flow: serve snapshot as of the cutoff -> champion model -> sharded scoring ->
checks -> atomic publish of a new version of the per-user table."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow

from flows.shard_runners import scoring_workers, shard_count, shard_task_runner, threads_per_worker
from flows.steps import (
    default_as_of_task,
    discard_version_task,
    exclusion_list_task,
    feature_tables_task,
    markdown_artifact_task,
    new_version_task,
    published_version_task,
    recommendation_checks_task,
    scoring_model_task,
    scoring_scope_task,
    user_recommendations_task,
)
from recpipe.params import RecommendParams
from recpipe.settings import Settings
from tasks.candidate_sets import CandidateConfig
from tasks.exploration import ExploreConfig
from tasks.feature_tables import FeatureConfig
from tasks.recommendation_publishing import PublishError
from tasks.user_recommendations import RecommendConfig


def recommend_config(params: RecommendParams, exclude: tuple, threads: int = 2,
                     candidates: CandidateConfig | None = None) -> RecommendConfig:
    """The scoring rules of a run, from its parameters; candidates as the model was trained."""
    return RecommendConfig(
        threads=threads,
        top_k=params.top_k, cold_max_events=params.cold_max_events, repurchase=params.repurchase,
        repurchase_window_days=params.repurchase_window_days, category_cap=params.category_cap,
        exclude_items=exclude, drift_boost=params.drift_boost, candidates=candidates or CandidateConfig(),
        explore=ExploreConfig(share=params.explore_share,
                              positions=tuple(params.explore_positions) if params.explore_positions else None,
                              new_item_days=params.new_item_days, seed=params.seed))


@flow(name="recommend", log_prints=True)
def recommend_flow(params: RecommendParams = RecommendParams()) -> dict:
    """Score every user with the chosen registered model and publish a new table version."""
    settings = Settings(**({"data_dir": params.data_dir} if params.data_dir else {}))
    lake, wh, recs_dir = settings.lake_dir, settings.warehouse_path, settings.recommendations_dir
    as_of = params.as_of or default_as_of_task(lake)
    feature_tables_task(lake, wh, as_of, "serve",
                        FeatureConfig(event_weights=settings.event_weights, half_life_days=settings.half_life_days))
    model = scoring_model_task(settings.tracking_uri, settings.registered_model_name, params.model_version,
                               settings.models_dir / "scoring")
    exclude = exclusion_list_task(params.exclude_items_file)
    workers = scoring_workers(params.workers)
    cfg = recommend_config(params, exclude, threads=threads_per_worker(workers), candidates=model.candidates)
    scope = scoring_scope_task(wh, params.top_k, exclude)
    n_shards = shard_count(scope.n_users, params.n_shards, params.shard_users, workers)
    version, version_dir = new_version_task(recs_dir)
    generated_at = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    try:
        with shard_task_runner(workers) as runner:
            futures = [runner.submit(user_recommendations_task, {
                "warehouse": wh, "shard": shard, "n_shards": n_shards, "booster_path": model.booster_path,
                "mf_path": model.mf_path, "cfg": cfg, "model_version": model.version, "run_id": model.run_id,
                "generated_at": generated_at, "out_path": str(version_dir / f"part-{shard:04d}.parquet"),
                "ranker_lib": model.ranker_lib})
                for shard in range(n_shards)]
            results = [f.result() for f in futures]
        scoring_seconds = time.perf_counter() - started
        checks = recommendation_checks_task(recs_dir, version, scope.blocked_items, scope.k, scope.n_users)
        if not checks.success:
            raise PublishError(f"version {version} failed its checks, previous version stays current: "
                               f"{checks.failures()}")
        published = published_version_task(recs_dir, version, wh, params.retention)
    except BaseException:
        discard_version_task(recs_dir, version)
        raise
    n_rows = sum(r.n_rows for r in results)
    by_source: dict[str, int] = {}
    for r in results:
        for k, v in r.by_source.items():
            by_source[k] = by_source.get(k, 0) + v
    summary = (f"### Recommendations {version}\n\nmodel {settings.registered_model_name} v{model.version} "
               f"(run {model.run_id}), as of {as_of.isoformat()}\n\n{scope.n_users:,} users, {n_rows:,} rows, "
               f"K={scope.k}; rows by source: {by_source}\n\nscoring {scoring_seconds:.1f}s = "
               f"{scope.n_users / max(scoring_seconds, 1e-9):,.0f} users/s ({n_shards} shards, {workers} "
               f"worker{'s' if workers > 1 else ''})\n\npath: {published.path}")
    markdown_artifact_task("recommendations", summary, "published recommendation version")
    print(summary)
    return {"version": version, "path": published.path, "previous": published.previous, "n_users": scope.n_users,
            "n_rows": n_rows, "by_source": by_source, "model_version": model.version,
            "scoring_seconds": scoring_seconds, "n_shards": n_shards}
