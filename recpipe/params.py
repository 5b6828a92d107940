"""Typed flow parameters: the Prefect UI renders each model as a form for a manual run.

`None` means "take it from Settings" (environment `RECPIPE_*`), so deployments and the CLI
share one source of defaults.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class IngestParams(BaseModel):
    """What to ingest into the lake."""

    events: str | None = Field(None, description="Event file, directory or glob (Parquet or CSV).")
    items: str | None = Field(None, description="Optional item catalogue file.")
    users: str | None = Field(None, description="Optional users file (users to score without events).")
    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    max_bad_row_share: float | None = Field(
        None, ge=0, le=1, description="Fail the ingest above this share of bad rows (default 1%).")
    min_ts: datetime = Field(datetime(2000, 1, 1), description="Events before this are quarantined.")


class FeatureParams(BaseModel):
    """Cutoff and windows of the point-in-time feature tables."""

    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    as_of: datetime | None = Field(
        None, description="Cutoff (UTC): events at or after it are invisible. Default: just after the last event.")
    snapshot: str = Field("serve", pattern="^(serve|train|eval)$", description="Schema to write.")
    half_life_days: float | None = Field(None, gt=0, description="Decay half-life; default from settings.")
    short_days: float = Field(7.0, gt=0, description="Short-term window of the drift signal.")
    covis_days: float = Field(30.0, gt=0, description="Window of co-visitation pairs.")
    covis_top_n: int = Field(50, ge=1, le=1000, description="Neighbours kept per item.")


class ALSParams(BaseModel):
    """implicit ALS hyperparameters."""

    factors: int = Field(48, ge=1, le=512, description="Latent factors (cost grows with its square).")
    regularization: float = Field(0.05, ge=0, description="L2 regularisation.")
    iterations: int = Field(10, ge=1, le=200, description="ALS sweeps.")
    alpha: float = Field(2.0, gt=0, description="Confidence scaling of interaction strength.")
    warm_start_iterations: int = Field(
        3, ge=0, le=200, description="Sweeps of the eval and serve fits, which start from the previous "
        "snapshot's factors (each snapshot only adds a week of events); 0 = fit each from scratch.")


class CandidateParams(BaseModel):
    """How many items each candidate source contributes, and the union cap per user."""

    n_history: int = Field(30, ge=0, description="User's own items (repeat candidates).")
    n_covis: int = Field(40, ge=0, description="Co-visitation neighbours of recent items.")
    n_mf: int = Field(50, ge=0, description="MF top-N (history excluded).")
    n_popular: int = Field(10, ge=0, description="Globally popular items.")
    n_trending: int = Field(10, ge=0, description="Trending items.")
    n_category: int = Field(30, ge=0, description="Popular items in the user's top categories.")
    max_candidates: int = Field(150, ge=10, le=2000, description="Cap on the union per user.")
    mf_pool: int = Field(5000, ge=1, description="MF top-N searches the most popular this many items "
                         "(on medium, 5,000 and 10,000 give the same candidates; cost is linear).")


class RankerParams(BaseModel):
    """LightGBM lambdarank hyperparameters."""

    n_estimators: int = Field(150, ge=1, le=5000, description="Boosting rounds (early stopping may use fewer).")
    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(31, ge=2, le=1024)
    min_data_in_leaf: int = Field(50, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    compact_tolerance: float = Field(
        0.005, ge=0, lt=1, description="Keep the fewest trees whose validation ndcg@10 is within this share of "
        "the best: trees that add less cost scoring time without changing the lists.")


class TrainParams(BaseModel):
    """A training run: cutoffs, model hyperparameters, evaluation and the promotion gate."""

    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    as_of: datetime | None = Field(None, description="Training cutoff (UTC); default just after the last event.")
    label_horizon_days: float = Field(7.0, gt=0, le=60, description="h: label window length; train labels [as_of-2h, as_of-h), evaluation [as_of-h, as_of).")
    als: ALSParams = Field(default_factory=ALSParams)
    candidates: CandidateParams = Field(default_factory=CandidateParams)
    ranker: RankerParams = Field(default_factory=RankerParams)
    max_train_users: int = Field(20_000, ge=10, description="Labelled users sampled for ranker training.")
    max_eval_users: int = Field(20_000, ge=10, description="Labelled users sampled for evaluation.")
    cold_max_events: int = Field(5, ge=1, description="Users with fewer events are the cold segment.")
    heavy_min_events: int = Field(100, ge=2, description="Users with at least this many events are heavy.")
    seed: int = Field(42, description="Seed of every sampler and model.")
    experiment_name: str | None = Field(None, description="MLflow experiment; default from settings.")
    promotion_tolerance: float = Field(0.0, ge=0, description="Promote if ndcg_at_10 >= champion's - tolerance.")
    force_promote: bool = Field(False, description="Promote regardless of the gate (a human decision).")


class RecommendParams(BaseModel):
    """A batch scoring run: which model, list shape, business rules, exploration, publishing."""

    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    as_of: datetime | None = Field(None, description="Cutoff (UTC): features and embeddings are rebuilt from events before it. Default: just after the last event.")
    top_k: int = Field(20, ge=1, le=500, description="Items per user.")
    model_version: str = Field("champion", description="Registered version number, or alias (champion / challenger).")
    n_shards: int = Field(0, ge=0, le=4096, description="User hash buckets scored independently (bounded memory; parallel); 0 = as many as keep every shard within shard_users, a multiple of the workers.")
    shard_users: int = Field(50_000, ge=100, description="Most users per shard when n_shards is 0: bounds each worker's memory (under 0.8 GB at 50k users on the medium shop).")
    workers: int = Field(0, ge=0, le=256, description="Processes scoring shards in parallel; 0 = one per CPU core, 1 = score in the flow's own process.")
    cold_max_events: int = Field(3, ge=0, description="Users with fewer events get the cold-start list.")
    repurchase: str = Field("auto", pattern="^(auto|exclude|ranker)$", description="Already-bought items: auto = hide them only in categories nobody re-buys; exclude = hide all bought within the window; ranker = leave to the model.")
    repurchase_window_days: float = Field(365.0, gt=0, description="Purchases older than this do not count for the rule.")
    category_cap: int | None = Field(None, ge=1, description="At most this many items per category in a user's list.")
    exclude_items_file: str | None = Field(None, description="Items never to show (file with an item_id column, or one id per line).")
    explore_share: float = Field(0.1, ge=0, le=0.5, description="Share of slots filled by exploration; 0 disables.")
    explore_positions: list[int] | None = Field(None, description="1-based slots for explored items; default spread over the list.")
    new_item_days: float = Field(14.0, gt=0, description="Items younger than this get an optimistic exploration prior.")
    drift_boost: float = Field(1.0, ge=0, description="How strongly a drifting user's recent categories are weighted up.")
    retention: int = Field(5, ge=1, description="Published versions kept on disk.")
    seed: int = Field(0, description="Exploration seed (per user and run).")


class RunParams(BaseModel):
    """The whole pipeline: ingest -> features -> train -> recommend."""

    events: str = Field(..., description="Event file, directory or glob.")
    items: str | None = Field(None, description="Optional item catalogue.")
    users: str | None = Field(None, description="Optional users file.")
    data_dir: str | None = Field(None, description="Data directory.")
    as_of: datetime | None = Field(None, description="Use only events before this (UTC); default after the last event.")
    top_k: int = Field(20, ge=1, le=500, description="Items per user.")
    max_bad_row_share: float | None = Field(None, ge=0, le=1, description="Ingest failure threshold.")
    train: TrainParams = Field(default_factory=TrainParams)
    recommend: RecommendParams = Field(default_factory=RecommendParams)
