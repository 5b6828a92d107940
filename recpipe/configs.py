"""The one mapper from parameters and settings to the stage configs the tasks take.

Flows call these; nothing else builds a stage config from user input, so a setting cannot be
wired in one flow and forgotten in another.
"""

from __future__ import annotations

import os

from recpipe.contract import DEFAULT_LABEL_GRADES
from recpipe.params import IngestParams, RecommendParams, TrainParams
from recpipe.settings import Settings, load_settings
from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.evaluation.offline_evaluation import EvalConfig
from recpipe.tasks.features.feature_tables import FeatureConfig
from recpipe.tasks.serving.exploration import ExploreConfig
from recpipe.tasks.serving.user_recommendations import RecommendConfig


def settings_for(data_dir: str | None) -> Settings:
    """Settings of a run: its `data_dir` parameter, else the environment's. With an object
    store, its endpoint and keys are exported for MLflow's S3 artifact client (boto3 reads
    only the environment) unless the process already has them, as under a worker."""
    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    for key, value in settings.store_environment().items():
        os.environ.setdefault(key, value)
    return settings


def ingest_settings(params: IngestParams) -> Settings:
    """Settings of an ingest: the ingest options a run was given (`max_bad_row_share`,
    `min_ts`, `event_map`) over the `RECPIPE_*` settings of the same names."""
    given = {
        name: getattr(params, name)
        for name in ("data_dir", "max_bad_row_share", "min_ts", "event_map")
        if getattr(params, name) is not None
    }
    return load_settings(**given)


def shard_runner(params: RecommendParams, settings: Settings) -> tuple[str, str | None]:
    """Where a run scores its shards: its `runner` and `dask_address` parameters over the
    `RECPIPE_RUNNER` / `RECPIPE_DASK_ADDRESS` settings."""
    return params.runner or settings.runner, params.dask_address or settings.dask_address


def feature_config(settings: Settings) -> FeatureConfig:
    """Feature windows and weights: pipeline-wide, the same for every snapshot and flow."""
    given = (
        {"half_life_days": settings.half_life_days} if settings.half_life_days is not None else {}
    )
    return FeatureConfig(event_weights=dict(settings.event_weights), **given)


def label_grades(settings: Settings) -> dict[str, int]:
    """Relevance grade of each accepted event type (types without a standard grade get 1)."""
    return {t: DEFAULT_LABEL_GRADES.get(t, 1) for t in settings.event_types}


def eval_config(params: TrainParams) -> EvalConfig:
    """How a training run evaluates the ranker and the baselines."""
    return EvalConfig(
        cold_max_events=params.cold_max_events,
        heavy_min_events=params.heavy_min_events,
        max_users=params.max_eval_users,
        seed=params.seed,
    )


def recommend_config(
    params: RecommendParams,
    exclude: tuple = (),
    threads: int = 2,
    candidates: CandidateConfig | None = None,
) -> RecommendConfig:
    """The scoring rules of a run, from its parameters; candidates as the model was trained."""
    return RecommendConfig(
        threads=threads,
        top_k=params.top_k,
        cold_max_events=params.cold_max_events,
        repurchase=params.repurchase,
        repurchase_window_days=params.repurchase_window_days,
        category_cap=params.category_cap,
        exclude_items=exclude,
        drift_boost=params.drift_boost,
        candidates=candidates or CandidateConfig(),
        explore=ExploreConfig(
            share=params.explore_share,
            positions=tuple(params.explore_positions) if params.explore_positions else None,
            new_item_days=params.new_item_days,
            seed=params.seed,
        ),
    )
