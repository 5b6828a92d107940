"""Typed flow parameters: the Prefect UI renders each model as a form for a manual run.

Every default has one home. Stage settings are defined once, with their stage
(`CandidateConfig`, `ALSParams`, `RankerParams`, `EvalConfig`, `RecommendConfig`,
`ExploreConfig`): these models nest them, or reuse a field's definition (default, bounds and
description) with `same_as`. Pipeline-wide knobs (data directory, event weights, half-life,
bad-row share) come from `Settings` when a field is `None`. The CLI's options default to "not
given" and defer to these models; `recpipe.configs` builds the stage configs from them.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic.fields import FieldInfo

from recpipe.settings import Runner
from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.evaluation.offline_evaluation import EvalConfig
from recpipe.tasks.models.als_embeddings import ALSParams
from recpipe.tasks.models.ranker_model import RankerParams
from recpipe.tasks.serving.exploration import ExploreConfig
from recpipe.tasks.serving.user_recommendations import RecommendConfig, Repurchase

__all__ = [
    "ALSParams",
    "CandidateConfig",
    "FeatureParams",
    "IngestParams",
    "RankerParams",
    "RecommendParams",
    "RunParams",
    "TrainParams",
    "default_of",
    "same_as",
]


def _fields(owner: Any) -> dict[str, FieldInfo]:
    return (
        owner.model_fields
        if isinstance(owner, type) and issubclass(owner, BaseModel)
        else owner.__pydantic_fields__
    )


def same_as(owner: Any, name: str, description: str | None = None) -> Any:
    """A copy of `owner`'s field `name` (default, bounds, description) for another model."""
    info = copy.copy(_fields(owner)[name])
    if description is not None:
        info.description = description
    return info


def default_of(owner: Any, name: str) -> Any:
    """The default of `owner`'s field `name` (for help texts)."""
    info = _fields(owner)[name]
    return info.default_factory() if info.default_factory is not None else info.default


DATA_DIR_HELP = "Data directory; default RECPIPE_DATA_DIR or ./data."
AS_OF_HELP = (
    "Cutoff (UTC): events at or after it are invisible. Default: just after the last event."
)


class IngestParams(BaseModel):
    """What to ingest into the lake."""

    events: str | None = Field(None, description="Event file, directory or glob (Parquet or CSV).")
    items: str | None = Field(None, description="Optional item catalogue file.")
    users: str | None = Field(
        None, description="Optional users file (users to score without events)."
    )
    data_dir: str | None = Field(None, description=DATA_DIR_HELP)
    max_bad_row_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fail the ingest above this share of bad rows; default from settings (1%).",
    )
    min_ts: datetime | None = Field(
        None,
        description="Events before this (UTC) are quarantined (ts_before_min); default from "
        "settings (1970-04-01: only catches epoch seconds read as milliseconds).",
    )
    event_map: dict[str, str] | None = Field(
        None,
        description='Source event-type values renamed before the checks, e.g. {"transaction": '
        '"purchase", "addtocart": "cart"}; default from settings (none).',
    )


class FeatureParams(BaseModel):
    """Which snapshot of the point-in-time feature tables to build, as of which cutoff.

    Windows and weights are pipeline-wide (`Settings`), so a snapshot built here matches the
    ones the train and recommend flows build."""

    data_dir: str | None = Field(None, description=DATA_DIR_HELP)
    as_of: datetime | None = Field(None, description=AS_OF_HELP)
    snapshot: Literal["serve", "train", "eval"] = Field("serve", description="Schema to write.")


class TrainParams(BaseModel):
    """A training run: cutoffs, model hyperparameters, evaluation and the promotion gate."""

    data_dir: str | None = Field(None, description=DATA_DIR_HELP)
    as_of: datetime | None = Field(
        None, description="Training cutoff (UTC); default just after the last event."
    )
    label_horizon_days: float = Field(
        7.0,
        gt=0,
        le=60,
        description="h: label window length; train labels [as_of-2h, as_of-h), evaluation [as_of-h, as_of).",
    )
    als: ALSParams = Field(default_factory=ALSParams)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    ranker: RankerParams = Field(default_factory=RankerParams)
    max_train_users: int = Field(
        20_000, ge=10, description="Labelled users sampled for ranker training."
    )
    max_eval_users: int = same_as(EvalConfig, "max_users")
    cold_max_events: int = same_as(EvalConfig, "cold_max_events")
    heavy_min_events: int = same_as(EvalConfig, "heavy_min_events")
    seed: int = Field(42, description="Seed of every sampler and model.")
    experiment_name: str | None = Field(
        None, description="MLflow experiment; default from settings."
    )
    promotion_tolerance: float = Field(
        0.0, ge=0, description="Promote if ndcg_at_10 >= champion's - tolerance."
    )
    force_promote: bool = Field(
        False, description="Promote regardless of the gate (a human decision)."
    )


class RecommendParams(BaseModel):
    """A batch scoring run: which model, list shape, business rules, exploration, publishing."""

    data_dir: str | None = Field(None, description=DATA_DIR_HELP)
    as_of: datetime | None = Field(
        None,
        description="Cutoff (UTC): features and embeddings are rebuilt from events before it. "
        "Default: just after the last event.",
    )
    top_k: int = same_as(RecommendConfig, "top_k")
    model_version: str = Field(
        "champion",
        description="Registered version number, or alias (champion / challenger).",
    )
    n_shards: int = Field(
        0,
        ge=0,
        le=4096,
        description="User hash buckets scored independently (bounded memory; parallel); "
        "0 = as many as keep every shard within shard_users, a multiple of the workers.",
    )
    shard_users: int = Field(
        50_000,
        ge=100,
        description="Most users per shard when n_shards is 0: bounds each worker's memory "
        "(under 0.8 GB at 50k users on the medium shop).",
    )
    workers: int = Field(
        0,
        ge=0,
        le=256,
        description="Processes scoring shards in parallel; 0 = one per CPU core, "
        "1 = score in the flow's own process.",
    )
    runner: Runner | None = Field(
        None,
        description="Where shards are scored: local, processes or dask "
        "(default RECPIPE_RUNNER or processes).",
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler address (tcp://host:8786) for the dask runner (default "
        "RECPIPE_DASK_ADDRESS, else a local cluster of `workers` processes).",
    )
    cold_max_events: int = same_as(RecommendConfig, "cold_max_events")
    repurchase: Repurchase = same_as(RecommendConfig, "repurchase")
    repurchase_window_days: float = same_as(RecommendConfig, "repurchase_window_days")
    category_cap: int | None = same_as(RecommendConfig, "category_cap")
    exclude_items_file: str | None = Field(
        None, description="Items never to show (file with an item_id column, or one id per line)."
    )
    explore_share: float = same_as(ExploreConfig, "share")
    explore_positions: list[int] | None = same_as(ExploreConfig, "positions")
    new_item_days: float = same_as(ExploreConfig, "new_item_days")
    drift_boost: float = same_as(RecommendConfig, "drift_boost")
    retention: int = Field(5, ge=1, description="Published versions kept on disk.")
    allow_shrink: bool = Field(
        False,
        description="Publish even when the new table covers under half the current one's users "
        "(an empty table is never published).",
    )
    seed: int = same_as(ExploreConfig, "seed")

    @field_validator("model_version")
    @classmethod
    def _version_or_alias(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]*|[A-Za-z][A-Za-z0-9_-]*", value):
            raise ValueError(
                f"{value!r} is neither a registered version number (e.g. 3) nor an alias "
                "(e.g. champion, challenger)"
            )
        return value


class RunParams(BaseModel):
    """The whole pipeline: ingest -> features -> train -> recommend."""

    events: str = Field(..., description="Event file, directory or glob.")
    items: str | None = Field(None, description="Optional item catalogue.")
    users: str | None = Field(None, description="Optional users file.")
    data_dir: str | None = Field(None, description=DATA_DIR_HELP)
    as_of: datetime | None = Field(
        None, description="Use only events before this (UTC); default after the last event."
    )
    max_bad_row_share: float | None = same_as(IngestParams, "max_bad_row_share")
    min_ts: datetime | None = same_as(IngestParams, "min_ts")
    event_map: dict[str, str] | None = same_as(IngestParams, "event_map")
    train: TrainParams = Field(default_factory=TrainParams)
    recommend: RecommendParams = Field(default_factory=RecommendParams)

    def ingest_params(self) -> IngestParams:
        """The ingest step of this run."""
        return IngestParams(**self.model_dump(include=set(IngestParams.model_fields)))
