"""Scoring setups shared by the recommendation tests: a lake, the `serve` snapshot, a booster
and ALS factors on disk, and a one-call way to score all users with `user_recommendations`.

No Prefect here: `scoring_setup` trains the ranker the way the train flow does (train
snapshot as of `as_of - 2h`, labels in `[as_of - 2h, as_of - h)`, ALS per snapshot, lambdarank
with early stopping) and fits the scoring ALS on the `serve` snapshot as of `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from recpipe.contract import (
    DEFAULT_EVENT_WEIGHTS,
    DEFAULT_LABEL_GRADES,
    EVENT_TYPES,
    RECOMMENDATION_COLUMNS,
)
from recpipe.params import TrainParams
from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.features.feature_tables import FeatureConfig, feature_tables
from recpipe.tasks.features.ranking_labels import interaction_labels, label_set
from recpipe.tasks.features.snapshot_arrays import snapshot_arrays
from recpipe.tasks.features.training_windows import training_windows
from recpipe.tasks.ingest.ingested_events import ingested_events
from recpipe.tasks.ingest.lake_cutoffs import default_as_of
from recpipe.tasks.models.als_embeddings import ALSEmbeddings
from recpipe.tasks.models.candidate_scoring import embedding_view
from recpipe.tasks.models.ranker_model import LambdaRanker
from recpipe.tasks.models.ranker_training_set import ranker_training_set
from recpipe.tasks.serving.shard_inputs import discard_shard_inputs, shard_inputs
from recpipe.tasks.serving.user_recommendations import RecommendConfig, user_recommendations

HORIZON_DAYS = TrainParams().label_horizon_days
FEATURES = FeatureConfig(event_weights=DEFAULT_EVENT_WEIGHTS)
NOW = datetime(2027, 1, 1)  # ingestion clock: every synthetic event is in its past
GENERATED_AT = datetime(2026, 11, 1)
COLUMNS = list(RECOMMENDATION_COLUMNS)  # the published table's contract


@dataclass
class ScoringSetup:
    """Everything `user_recommendations` needs for one shop."""

    shop: Path
    lake: Path
    warehouse: Path
    as_of: datetime
    booster_path: str
    mf_path: str
    out_dir: Path

    def score(
        self, cfg: RecommendConfig, name: str, n_shards: int = 1, split: bool = False
    ) -> pd.DataFrame:
        """All users' rows under `cfg` (shards concatenated), sorted by (user_id, rank). With
        `split` the shards read their users from `shard_inputs`, as the recommend flow's do."""
        inputs = shard_inputs(self.warehouse, n_shards) if split else None
        frames = []
        for shard in range(n_shards):
            out = self.out_dir / name / f"part-{shard:04d}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            user_recommendations(
                self.warehouse,
                shard,
                n_shards,
                self.booster_path,
                self.mf_path,
                cfg,
                "1",
                "run-test",
                GENERATED_AT,
                str(out),
                shard_inputs=inputs,
            )
            frames.append(pd.read_parquet(out))
        discard_shard_inputs(inputs)
        df = pd.concat(frames, ignore_index=True)
        return df.sort_values(["user_id", "rank"]).reset_index(drop=True)


def ingest_shop(shop: Path, lake: Path, events: Path | None = None) -> Path:
    """Land the shop's events (or `events`), catalogue and users in `lake`."""
    ingested_events(
        events or shop / "events",
        lake,
        EVENT_TYPES,
        items=shop / "items.parquet",
        users=shop / "users.parquet",
        now=NOW,
    )
    return lake


def train_booster(lake: Path, wh: Path, as_of: datetime, out: Path, seed: int = 42) -> str:
    """A lambdarank booster trained like the train flow does (features as of as_of - 2h)."""
    cut, end = training_windows(as_of, HORIZON_DAYS).label_windows()["train"]
    feature_tables(lake, wh, cut, "train", FEATURES)
    interaction_labels(lake, wh, "train", cut, end, DEFAULT_LABEL_GRADES)
    snap = snapshot_arrays(wh, "train")
    emb = ALSEmbeddings(random_state=seed).fit(snap.interactions, snap.user_ids, snap.item_ids)
    ts = ranker_training_set(
        snap,
        embedding_view(snap, emb),
        label_set(wh, "train", snap.item_ids),
        CandidateConfig(),
        seed=seed,
    )
    tr, va = ts.split()
    ranker = LambdaRanker(n_estimators=40, early_stopping_rounds=10, random_state=seed).fit(
        *tr, ts.names, *va
    )
    return str(ranker.save(out))


def scoring_setup(shop: Path, root: Path, booster_path: str | None = None) -> ScoringSetup:
    """Ingest `shop` under `root`, build the serve snapshot, fit ALS on it; train a booster
    unless one is given (a booster only depends on feature names, so it can be shared)."""
    lake = ingest_shop(shop, root / "lake")
    wh = root / "warehouse.duckdb"
    as_of = default_as_of(lake)
    if booster_path is None:
        booster_path = train_booster(lake, wh, as_of, root / "models" / "booster.lgb")
    feature_tables(lake, wh, as_of, "serve", FEATURES)
    snap = snapshot_arrays(wh, "serve")
    emb = ALSEmbeddings(random_state=42).fit(snap.interactions, snap.user_ids, snap.item_ids)
    mf_path = str(emb.save(root / "models" / "als-serve.npz"))
    return ScoringSetup(shop, lake, wh, as_of, booster_path, mf_path, root / "recs")


# ---------------------------------------------------------------------------------------------
# Whole-pipeline runs (Prefect): built once per test session and shared between modules


@dataclass
class PipelineRun:
    """A `run_flow` result and where its shop and data directory are."""

    shop: Path
    data_dir: Path
    result: dict
    events: Path


_RUNS: dict[str, PipelineRun] = {}


def fast_train_params():
    """Training small enough for tests (fewer factors, sweeps and boosting rounds)."""
    from recpipe.params import ALSParams, RankerParams, TrainParams

    return TrainParams(
        als=ALSParams(factors=32, iterations=8),
        ranker=RankerParams(n_estimators=60, early_stopping_rounds=10),
    )


def pipeline_run(name: str, tmp_path_factory) -> PipelineRun:
    """`run_flow` on one of two logs, once per session (needs the `prefect_server` fixture):

    - "string_ids": the `tiny` shop with string ids, events and users but no item file;
    - "purchases_only": the `small` shop's purchase events only, with items and users.
    """
    if name in _RUNS:
        return _RUNS[name]
    from recpipe.flows.pipeline import run_flow
    from recpipe.params import RunParams
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    root = tmp_path_factory.mktemp(f"run_{name}")
    shop = root / "shop"
    items = None
    if name == "string_ids":
        synthetic_shop(shop, "tiny", seed=7, string_ids=True)
        events = shop / "events"
    elif name == "purchases_only":
        synthetic_shop(shop, "small", seed=11)
        log = pd.read_parquet(shop / "events")
        events = root / "purchases" / "purchases.parquet"
        events.parent.mkdir()
        log[log["event_type"] == "purchase"].to_parquet(events, index=False)
        items = str(shop / "items.parquet")
    else:
        raise ValueError(name)
    data = root / "data"
    result = run_flow(
        RunParams(
            events=str(events),
            items=items,
            users=str(shop / "users.parquet"),
            data_dir=str(data),
            top_k=20,
            train=fast_train_params(),
        )
    )
    _RUNS[name] = PipelineRun(shop, data, result, events)
    return _RUNS[name]


def published_rows(data_dir: Path) -> tuple[str, pd.DataFrame]:
    """(CURRENT version, its rows sorted by user and rank), read from the part files."""
    from recpipe.tasks.serving.recommendation_publishing import current_version, version_files

    recs = Path(data_dir) / "recommendations"
    version = current_version(recs)
    df = pd.concat([pd.read_parquet(f, columns=COLUMNS) for f in version_files(recs, version)])
    return version, df.sort_values(["user_id", "rank"]).reset_index(drop=True)


def view_rows(data_dir: Path) -> pd.DataFrame:
    """Rows of the DuckDB view `recommendations` in warehouse.duckdb, sorted like published_rows."""
    import duckdb

    with duckdb.connect(str(Path(data_dir) / "warehouse.duckdb"), read_only=True) as con:
        df = con.sql(f"select {', '.join(COLUMNS)} from recommendations").df()
    return df.sort_values(["user_id", "rank"]).reset_index(drop=True)


def valid_table(users=range(5), k: int = 4) -> pd.DataFrame:
    """A hand-made valid version: k distinct items per user, ranks 1..k, scores decreasing."""
    rows = [(u, r, 100 * u + r, 1.0 - r / 10, "ranker") for u in users for r in range(1, k + 1)]
    df = pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score", "source"])
    df["rank"] = df["rank"].astype("int32")
    df["propensity"] = float("nan")
    df["model_version"], df["run_id"] = "1", "run"
    df["generated_at"] = pd.Timestamp("2026-11-01").as_unit("us")
    return df[COLUMNS]


def write_version(recs: Path, df: pd.DataFrame) -> str:
    """A new version directory under `recs` holding `df` as its one part file."""
    from recpipe.tasks.serving.recommendation_publishing import new_version

    version, path = new_version(recs)
    df.to_parquet(path / "part-0000.parquet", index=False)
    return version
