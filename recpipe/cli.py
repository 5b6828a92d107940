"""`recpipe` command line.

Each command first sets the local-only environment (telemetry off, MLflow tracking and
Prefect home under the data directory) without overriding what the user already set, and
only then imports Prefect / MLflow code.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from recpipe.errors import RecpipeError
from recpipe.settings import LOG_FORMAT, Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Batch recommendations from shop behaviour logs.",
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default RECPIPE_DATA_DIR or ./data)."),
]
_debug = {"on": False}


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.")
    ] = False,
) -> None:
    """Batch recommendations from shop behaviour logs."""
    _debug["on"] = debug


def command(fn: Callable) -> Callable:
    """A CLI command whose `RecpipeError`s print as one line and exit with code 2 (the traceback
    with `recpipe --debug ...`); any other error is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RecpipeError as exc:
            if _debug["on"]:
                raise
            typer.echo(f"recpipe {fn.__name__.rstrip('_')}: {exc}", err=True)
            raise typer.Exit(2) from None

    return run


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave (not None): the rest defer to the parameter models' defaults."""
    return {k: v for k, v in values.items() if v is not None}


def prepare(data_dir: Path | None) -> Settings:
    """Settings for this command, with the local environment defaults applied."""
    if data_dir is not None:
        os.environ["RECPIPE_DATA_DIR"] = str(Path(data_dir).resolve())
    settings = Settings()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    for key, value in settings.local_environment().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "recpipe")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for noisy in ("great_expectations", "alembic", "httpx", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


@app.command()
@command
def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the synthetic shop to.")] = Path(
        "data/shop"
    ),
    preset: Annotated[str, typer.Option(help="tiny, small, demo, medium or large.")] = "demo",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 42,
    string_ids: Annotated[bool, typer.Option(help="Write string user/item ids.")] = False,
    consumable_share: Annotated[
        float | None, typer.Option(help="Share of consumable (re-bought) categories.")
    ] = None,
) -> None:
    """Write a seeded synthetic shop: events/, items.parquet, users.parquet, ground_truth/."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    summary = synthetic_shop(
        out, preset, seed=seed, string_ids=string_ids, **given(consumable_share=consumable_share)
    )
    typer.echo(
        f"{summary.n_events:,} events, {summary.n_users:,} users, {summary.n_items:,} items "
        f"-> {summary.out_dir}"
    )


@app.command("import")
@command
def import_(
    fmt: Annotated[str, typer.Argument(help="retailrocket, taobao, movielens or generic.")],
    source: Annotated[Path, typer.Argument(help="The source file.")],
    out: Annotated[Path, typer.Argument(help="Directory for events.parquet (and items.parquet).")],
    purchase_threshold: Annotated[
        float | None, typer.Option(help="MovieLens: ratings >= this are purchases (default 4).")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="generic: contract=source, e.g. user_id=visitor."),
    ] = None,
    event: Annotated[
        list[str] | None, typer.Option("--event", help="generic: source=contract, e.g. click=view.")
    ] = None,
    ts_unit: Annotated[
        str | None, typer.Option(help="generic: s or ms when ts is a unix epoch.")
    ] = None,
) -> None:
    """Convert a public log format to the event contract."""
    from recpipe.errors import InputError
    from recpipe.tasks.ingest.log_importers import IMPORTERS

    if fmt not in IMPORTERS:
        raise InputError(f"unknown format {fmt!r}; choose from {sorted(IMPORTERS)}")
    if fmt == "movielens":
        result = IMPORTERS[fmt](source, out, **given(purchase_threshold=purchase_threshold))
    elif fmt == "generic":
        result = IMPORTERS[fmt](
            source, out, _pairs(column, "--column"), _pairs(event, "--event") or None, ts_unit
        )
    else:
        result = IMPORTERS[fmt](source, out)
    typer.echo(
        f"{result.n_events:,} events -> {result.events_path}"
        + (f"; {result.n_items:,} items -> {result.items_path}" if result.items_path else "")
    )


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    from recpipe.errors import InputError

    out_map = {}
    for v in values or []:
        if "=" not in v:
            raise InputError(f"{what} {v!r} is not key=value")
        k, val = v.split("=", 1)
        out_map[k.strip()] = val.strip()
    return out_map


@app.command()
@command
def ingest(
    events: Annotated[str | None, typer.Option(help="Event file, directory or glob.")] = None,
    items: Annotated[str | None, typer.Option(help="Item catalogue file.")] = None,
    users: Annotated[str | None, typer.Option(help="Users file.")] = None,
    data_dir: DataDir = None,
    max_bad_row_share: Annotated[
        float | None, typer.Option(help="Fail above this share of bad rows (default 1%).")
    ] = None,
) -> None:
    """Validate raw files and land the good rows in the lake (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.flows.ingest import ingest_flow
    from recpipe.params import IngestParams

    ingest_flow(
        IngestParams(
            events=events,
            items=items,
            users=users,
            data_dir=str(settings.data_path),
            max_bad_row_share=max_bad_row_share,
        )
    )


@app.command()
@command
def features(
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Cutoff (UTC); default just after the last event.")
    ] = None,
    snapshot: Annotated[
        str | None, typer.Option(help="serve, train or eval (default serve).")
    ] = None,
) -> None:
    """Build the point-in-time feature tables in warehouse.duckdb (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.flows.features import features_flow
    from recpipe.params import FeatureParams

    features_flow(
        FeatureParams(data_dir=str(settings.data_path), as_of=as_of, **given(snapshot=snapshot))
    )


def _train_params(
    data_dir: Path,
    as_of: datetime | None,
    horizon_days: float | None,
    factors: int | None,
    iterations: int | None,
    n_estimators: int | None,
    experiment: str | None,
    force_promote: bool | None,
):
    from recpipe.params import ALSParams, RankerParams, TrainParams

    return TrainParams(
        data_dir=str(data_dir),
        as_of=as_of,
        experiment_name=experiment,
        als=ALSParams(**given(factors=factors, iterations=iterations)),
        ranker=RankerParams(**given(n_estimators=n_estimators)),
        **given(label_horizon_days=horizon_days, force_promote=force_promote),
    )


@app.command()
@command
def train(
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Training cutoff (UTC); default just after the last event."),
    ] = None,
    horizon_days: Annotated[
        float | None, typer.Option(help="Label horizon h in days (default 7).")
    ] = None,
    factors: Annotated[int | None, typer.Option(help="ALS factors (default 48).")] = None,
    iterations: Annotated[
        int | None, typer.Option(help="ALS sweeps of the first fit (default 10).")
    ] = None,
    n_estimators: Annotated[
        int | None, typer.Option(help="Ranker boosting rounds (default 150).")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name.")] = None,
    force_promote: Annotated[
        bool, typer.Option("--force-promote", help="Promote even if it does not beat the champion.")
    ] = False,
) -> None:
    """Train, evaluate against baselines, log to MLflow and run the promotion gate (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.flows.train import train_flow

    result = train_flow(
        _train_params(
            settings.data_path,
            as_of,
            horizon_days,
            factors,
            iterations,
            n_estimators,
            experiment,
            force_promote or None,
        )
    )
    typer.echo(_training_summary(result))


@app.command()
@command
def recommend(
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Cutoff (UTC); default just after the last event.")
    ] = None,
    top_k: Annotated[int | None, typer.Option(help="Items per user (default 20).")] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Registered version or alias (default champion).")
    ] = None,
    n_shards: Annotated[
        int | None,
        typer.Option(help="User hash buckets (default 0 = enough for --shard-users each)."),
    ] = None,
    shard_users: Annotated[
        int | None, typer.Option(help="Most users per shard when --n-shards is 0 (default 50,000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes scoring shards in parallel (default 0 = one per core)."),
    ] = None,
    explore_share: Annotated[
        float | None, typer.Option(help="Share of exploration slots, 0 disables (default 0.1).")
    ] = None,
    repurchase: Annotated[
        str | None, typer.Option(help="auto, exclude or ranker (default auto).")
    ] = None,
    category_cap: Annotated[
        int | None, typer.Option(help="Max items per category in a list.")
    ] = None,
    exclude_items: Annotated[
        str | None, typer.Option(help="File of item ids never to show.")
    ] = None,
) -> None:
    """Score every user with the champion and publish a new table version (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.flows.recommend import recommend_flow
    from recpipe.params import RecommendParams

    result = recommend_flow(
        RecommendParams(
            data_dir=str(settings.data_path),
            as_of=as_of,
            **given(
                top_k=top_k,
                model_version=model_version,
                n_shards=n_shards,
                shard_users=shard_users,
                workers=workers,
                explore_share=explore_share,
                repurchase=repurchase,
                category_cap=category_cap,
                exclude_items_file=exclude_items,
            ),
        )
    )
    typer.echo(
        f"published {result['version']}: {result['n_users']:,} users, {result['n_rows']:,} rows "
        f"-> {result['path']}"
    )
    typer.echo(
        f"scoring {result['scoring_seconds']:.1f}s = "
        f"{result['n_users'] / max(result['scoring_seconds'], 1e-9):,.0f} users/s"
    )


@app.command()
@command
def run(
    events: Annotated[str, typer.Option(help="Event file, directory or glob.")],
    items: Annotated[str | None, typer.Option(help="Item catalogue file.")] = None,
    users: Annotated[str | None, typer.Option(help="Users file.")] = None,
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Use only events before this (UTC).")
    ] = None,
    top_k: Annotated[int | None, typer.Option(help="Items per user (default 20).")] = None,
) -> None:
    """The whole pipeline: ingest -> features -> train -> recommend (one parent Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.flows.pipeline import run_flow
    from recpipe.params import RecommendParams, RunParams

    result = run_flow(
        RunParams(
            events=events,
            items=items,
            users=users,
            data_dir=str(settings.data_path),
            as_of=as_of,
            recommend=RecommendParams(**given(top_k=top_k)),
        )
    )
    typer.echo(_run_summary(result, settings))


@app.command()
@command
def demo(
    data_dir: DataDir = Path("data/demo"),
    preset: Annotated[str, typer.Option(help="Synthetic shop preset.")] = "demo",
) -> None:
    """Generate a synthetic shop and run the whole pipeline on it."""
    settings = prepare(data_dir)
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    shop = settings.data_path / "shop"
    if not (shop / "items.parquet").exists():
        synthetic_shop(shop, preset, seed=42)
    run(
        events=str(shop / "events"),
        items=str(shop / "items.parquet"),
        users=str(shop / "users.parquet"),
        data_dir=settings.data_path,
        as_of=None,
        top_k=None,
    )


@app.command()
@command
def recs(
    user_id: Annotated[str, typer.Argument(help="The user whose list to show.")],
    data_dir: DataDir = None,
) -> None:
    """Print one user's current recommendations with sources and item categories."""
    settings = prepare(data_dir)
    from recpipe.tasks.serving.recommendation_lookup import user_list

    version, df = user_list(settings.recommendations_dir, settings.lake_dir, user_id)
    if df.empty:
        typer.echo(f"user {user_id} has no recommendations in version {version}")
        raise typer.Exit(1)
    typer.echo(f"user {user_id} - version {version} - model v{df['model_version'].iloc[0]}")
    typer.echo(
        df[["rank", "item_id", "category", "source", "score", "propensity"]].to_string(index=False)
    )


def _run_summary(result: dict, settings: Settings) -> str:
    recs_ = result["recommend"]
    return "\n".join(
        [
            _training_summary(result["train"]),
            "",
            f"recommendations: {recs_['n_users']:,} users x K -> {recs_['path']} (version {recs_['version']})",
            f"DuckDB: {settings.warehouse_path} (view `recommendations`); rows by source: {recs_['by_source']}",
            f"MLflow UI:  MLFLOW_TRACKING_URI={settings.tracking_uri} .venv/bin/mlflow ui "
            f"--backend-store-uri {settings.tracking_uri} --port 5000",
            f"Prefect UI: PREFECT_HOME={settings.data_path / '.prefect'} .venv/bin/prefect server start "
            "--host 127.0.0.1 --port 4200",
            f"one user's list: .venv/bin/recpipe recs USER_ID --data-dir {settings.data_path}",
        ]
    )


def _training_summary(result: dict) -> str:
    m = result["metrics"]
    rows = [("ranker", "")] + [
        (f"baseline.{b}", f"baseline.{b}.")
        for b in ("popularity", "recent_popularity", "mf", "covis")
    ]
    lines = [f"{'model':28s} {'ndcg_at_10':>10s} {'recall_at_20':>12s}"]
    for name, prefix in rows:
        lines.append(
            f"{name:28s} {m[prefix + 'ndcg_at_10']:10.4f} {m[prefix + 'recall_at_20']:12.4f}"
        )
    lines.append(f"lift over best baseline: {m['lift.ndcg_at_10_over_best_baseline']:+.1%}")
    lines.append(
        f"MLflow run {result['run_id']} (experiment {result['experiment']}), "
        f"version {result['version']}: {result['reason']}"
    )
    return "\n".join(lines)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
