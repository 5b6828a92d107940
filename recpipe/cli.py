"""`recpipe` command line.

Each command first sets the local-only environment (telemetry off, MLflow tracking and
Prefect home under the data directory) without overriding what the user already set, and
only then imports Prefect / MLflow code.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from recpipe.errors import InputError, RecpipeError
from recpipe.preflight import (
    cutoff_after_first_event,
    existing_file,
    existing_inputs,
    writable_data_dir,
    writable_dir,
)
from recpipe.servers import client_environment
from recpipe.settings import LOG_FORMAT, Settings, load_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Batch recommendations from shop behaviour logs.",
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default RECPIPE_DATA_DIR or ./data)."),
]
Wait = Annotated[
    float | None,
    typer.Option(
        "--wait",
        help="Seconds to wait while another run holds the data directory (default 0: fail at "
        "once, naming it).",
    ),
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
    """A CLI command whose user errors (`RecpipeError`, or an option value its parameter model
    rejects) print as one line and exit with code 2 (the traceback with `recpipe --debug ...`);
    any other error is a bug and keeps its traceback."""
    name = fn.__name__.rstrip("_")

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (RecpipeError, ValidationError) as exc:
            if _debug["on"]:
                raise
            message = _option_error(exc) if isinstance(exc, ValidationError) else str(exc)
            typer.echo(f"recpipe {name}: {message}", err=True)
            raise typer.Exit(2) from None

    return run


def _option_error(exc: ValidationError) -> str:
    """A parameter model's complaint as the option the user typed: `--top-k: Input should be
    greater than or equal to 1 (got 0)`."""
    err = exc.errors()[0]
    field = next((p for p in reversed(err["loc"]) if isinstance(p, str)), "")
    option = f"--{field.replace('_', '-')}" if field else exc.title
    if err["type"] == "literal_error":  # an enum field: name the choices
        return f"{option}: {err.get('input')!r} is not one of {err['ctx']['expected']}"
    if err["type"] == "value_error":  # the model's own message names the value
        return f"{option}: {err['ctx']['error']}"
    return f"{option}: {err['msg']} (got {err.get('input')!r})"


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave (not None): the rest defer to the parameter models' defaults."""
    return {k: v for k, v in values.items() if v is not None}


def prepare(data_dir: Path | None, writes: bool = True) -> Settings:
    """Settings for this command, with the local environment defaults applied. A command that
    `writes` gets a data directory that exists and is writable (or a one-line error now,
    before Prefect starts)."""
    if data_dir is not None:
        os.environ["RECPIPE_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    settings = load_settings()
    if writes:
        writable_data_dir(settings.data_path)
        reachable_store(settings)
    servers = client_environment(settings.data_path)  # `recpipe up` for this data directory
    if servers:
        for key, value in servers.items():
            os.environ.setdefault(key, value)
        settings = load_settings()
    for key, value in settings.local_environment().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "recpipe")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for noisy in ("great_expectations", "alembic", "httpx", "mlflow", "urllib3", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


def reachable_store(settings: Settings) -> None:
    """A configured object store must answer and hold its bucket (a one-line error now)."""
    if settings.object_store:
        from recpipe.tasks.common.object_store import object_store

        object_store(**vars(settings.store_config()))


@contextmanager
def writing(settings: Settings, command_name: str, wait: float | None) -> Iterator[None]:
    """Hold the data directory's writer lock for the whole command (the flow re-enters it), so
    a second writer fails in a second, naming the holder, instead of after Prefect starts; and
    checks that read the data directory run under it."""
    from recpipe.tasks.common.data_dir_lock import writer_lock

    if wait is not None and wait < 0:
        raise InputError(f"--wait must be >= 0, not {wait}")
    with writer_lock(
        settings.data_path,
        command_name,
        wait if wait is not None else settings.lock_wait_seconds,
    ):
        signal.signal(signal.SIGINT, _interrupted)
        yield


INTERRUPT_GRACE_SECONDS = 15.0


def _interrupted(signum: int, frame: Any) -> None:
    """Ctrl-C: raise KeyboardInterrupt (the run removes its unpublished version and stops its
    workers), and exit 130 at the latest `INTERRUPT_GRACE_SECONDS` later: the same Ctrl-C stops
    the temporary Prefect server, and Prefect would retry reporting the crash to it for
    minutes. A second Ctrl-C exits at once."""
    if getattr(_interrupted, "fired", False):
        os._exit(130)
    _interrupted.fired = True
    timer = threading.Timer(INTERRUPT_GRACE_SECONDS, os._exit, args=(130,))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def flow_of(module: str, name: str) -> Callable:
    """The flow `recpipe.flows.<module>.<name>`, imported (which starts Prefect's logging) once
    the command's own checks passed; Prefect's copies of a user error stay off the terminal."""
    import importlib

    flow = getattr(importlib.import_module(f"recpipe.flows.{module}"), name)
    if not _debug["on"]:
        _quiet_user_error_tracebacks()
    return flow


class _UserErrorFilter(logging.Filter):
    """Drops Prefect's error records about a `RecpipeError` (the task's and the flow's
    traceback, the failed states): the CLI prints the one line. The records still reach the
    Prefect API (the UI), whose handler has no such filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not record.name.startswith("prefect"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RecpipeError):
            return False
        text = record.getMessage()
        return not any(f"{name}(" in text or f"{name}:" in text for name in _user_error_names())


@functools.cache
def _user_error_names() -> tuple[str, ...]:
    import recpipe.errors as errors

    return tuple(
        name
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, RecpipeError)
    )


def _quiet_user_error_tracebacks() -> None:
    import prefect  # noqa: F401  (configures Prefect's logging handlers)

    handlers = {h for name in ("", "prefect") for h in logging.getLogger(name).handlers}
    for handler in handlers:
        if type(handler).__name__ == "APILogHandler":
            continue
        if not any(isinstance(f, _UserErrorFilter) for f in handler.filters):
            handler.addFilter(_UserErrorFilter())


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
    writable_dir(out, "--out")
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
    event_type: Annotated[
        str | None,
        typer.Option(
            help="generic: the event type of every row, for a log without an event column "
            "(an order export: purchase)."
        ),
    ] = None,
    ts_format: Annotated[
        str | None,
        typer.Option(help="generic: strptime format of text dates, e.g. '%m/%d/%Y %H:%M'."),
    ] = None,
    encoding: Annotated[
        str, typer.Option(help="generic: the file's character set: utf-8, utf-16 or latin-1.")
    ] = "utf-8",
) -> None:
    """Convert a public log format to the event contract."""
    existing_file(source, "SOURCE")
    writable_dir(out, "OUT")
    from recpipe.tasks.ingest.log_importers import IMPORTERS

    if fmt not in IMPORTERS:
        raise InputError(f"unknown format {fmt!r}; choose from {sorted(IMPORTERS)}")
    if fmt == "movielens":
        result = IMPORTERS[fmt](source, out, **given(purchase_threshold=purchase_threshold))
    elif fmt == "generic":
        result = IMPORTERS[fmt](
            source,
            out,
            _pairs(column, "--column"),
            _pairs(event, "--event") or None,
            ts_unit,
            event_type,
            ts_format,
            encoding,
        )
    else:
        result = IMPORTERS[fmt](source, out)
    typer.echo(
        f"{result.n_events:,} events -> {result.events_path}"
        + (f"; {result.n_items:,} items -> {result.items_path}" if result.items_path else "")
    )


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
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
    max_bad_row_share: MaxBadRowShare = None,
    min_ts: MinTs = None,
    event_map: EventMap = None,
    wait: Wait = None,
) -> None:
    """Validate raw files and land the good rows in the lake (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.configs import ingest_settings
    from recpipe.params import IngestParams

    params = IngestParams(
        events=events,
        items=items,
        users=users,
        data_dir=str(settings.data_path),
        **_ingest_values(max_bad_row_share, min_ts, event_map),
    )
    ingest_settings(params)  # a bad option or setting fails here, before Prefect starts
    existing_inputs(events, items, users)
    with writing(settings, "ingest", wait):
        ingest_flow = flow_of("ingest", "ingest_flow")
        from recpipe.tasks.common.expectation_suites import warm_up

        warm_up()  # after the flow's imports: it overlaps the flow start-up's waits instead
        ingest_flow(params)


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
    wait: Wait = None,
) -> None:
    """Build the point-in-time feature tables in warehouse.duckdb (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.params import FeatureParams

    params = FeatureParams(
        data_dir=str(settings.data_path), as_of=as_of, **given(snapshot=snapshot)
    )
    with writing(settings, "features", wait):
        cutoff_after_first_event(settings, as_of)
        features_flow = flow_of("features", "features_flow")
        features_flow(params)


HorizonDays = Annotated[float | None, typer.Option(help="Label horizon h in days (default 7).")]
Factors = Annotated[int | None, typer.Option(help="ALS factors (default 48).")]
Iterations = Annotated[int | None, typer.Option(help="ALS sweeps of the first fit (default 10).")]
NEstimators = Annotated[int | None, typer.Option(help="Ranker boosting rounds (default 150).")]
Experiment = Annotated[str | None, typer.Option(help="MLflow experiment name.")]
ForcePromote = Annotated[
    bool, typer.Option("--force-promote", help="Promote even if it does not beat the champion.")
]
TopK = Annotated[int | None, typer.Option(help="Items per user (default 20).")]
NShards = Annotated[
    int | None, typer.Option(help="User hash buckets (default 0 = enough for --shard-users each).")
]
ShardUsers = Annotated[
    int | None, typer.Option(help="Most users per shard when --n-shards is 0 (default 50,000).")
]
Workers = Annotated[
    int | None,
    typer.Option(help="Processes scoring shards in parallel (default 0 = one per core)."),
]
ScoringRunner = Annotated[
    str | None,
    typer.Option(
        "--runner",
        help="Where shards are scored: local, processes or dask (default RECPIPE_RUNNER or "
        "processes).",
    ),
]
DaskAddress = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler (tcp://host:8786) for --runner dask (default RECPIPE_DASK_ADDRESS, "
        "else a local cluster of --workers processes)."
    ),
]
ExploreShare = Annotated[
    float | None, typer.Option(help="Share of exploration slots, 0 disables (default 0.1).")
]
Repurchase = Annotated[str | None, typer.Option(help="auto, exclude or ranker (default auto).")]
CategoryCap = Annotated[int | None, typer.Option(help="Max items per category in a list.")]
ExcludeItems = Annotated[str | None, typer.Option(help="File of item ids never to show.")]
AllowShrink = Annotated[
    bool,
    typer.Option(
        "--allow-shrink",
        help="Publish even if the new table covers under half the current one's users.",
    ),
]
MaxBadRowShare = Annotated[
    float | None, typer.Option(help="Fail above this share of bad rows (default 1%).")
]
MinTs = Annotated[
    datetime | None,
    typer.Option(
        help="Quarantine events before this (UTC) as ts_before_min (default RECPIPE_MIN_TS or "
        "1970-04-01, which only catches epoch seconds read as milliseconds)."
    ),
]
EventMap = Annotated[
    list[str] | None,
    typer.Option(
        "--event-map",
        help="Rename a source event type before the checks, source=type (repeatable), e.g. "
        "--event-map transaction=purchase (default RECPIPE_EVENT_MAP).",
    ),
]


def _ingest_values(max_bad_row_share, min_ts, event_map) -> dict[str, Any]:
    """The ingest options given (`ingest` and `run`)."""
    return given(
        max_bad_row_share=max_bad_row_share,
        min_ts=min_ts,
        event_map=_pairs(event_map, "--event-map") or None,
    )


def _train_values(horizon_days, factors, iterations, n_estimators, experiment, force_promote):
    """The training options given, as (nested) TrainParams values."""
    values = given(
        label_horizon_days=horizon_days,
        experiment_name=experiment,
        force_promote=force_promote or None,
    )
    als, ranker = given(factors=factors, iterations=iterations), given(n_estimators=n_estimators)
    return values | ({"als": als} if als else {}) | ({"ranker": ranker} if ranker else {})


def _recommend_values(
    top_k, n_shards, shard_users, workers, runner, dask_address, explore_share, repurchase,
    category_cap, exclude_items, allow_shrink, model_version=None,
):  # fmt: skip
    """The recommendation options given, as RecommendParams values."""
    return given(
        top_k=top_k,
        model_version=model_version,
        n_shards=n_shards,
        shard_users=shard_users,
        workers=workers,
        runner=runner,
        dask_address=dask_address,
        explore_share=explore_share,
        repurchase=repurchase,
        category_cap=category_cap,
        exclude_items_file=exclude_items,
        allow_shrink=allow_shrink or None,
    )


@app.command()
@command
def train(
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Training cutoff (UTC); default just after the last event."),
    ] = None,
    horizon_days: HorizonDays = None,
    factors: Factors = None,
    iterations: Iterations = None,
    n_estimators: NEstimators = None,
    experiment: Experiment = None,
    force_promote: ForcePromote = False,
    wait: Wait = None,
) -> None:
    """Train, evaluate against baselines, log to MLflow and run the promotion gate (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.params import TrainParams

    params = TrainParams(
        data_dir=str(settings.data_path),
        as_of=as_of,
        **_train_values(horizon_days, factors, iterations, n_estimators, experiment, force_promote),
    )
    with writing(settings, "train", wait):
        cutoff_after_first_event(settings, as_of)
        train_flow = flow_of("train", "train_flow")
        result = train_flow(params)
    typer.echo(_training_summary(result))


@app.command()
@command
def recommend(
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Cutoff (UTC); default just after the last event.")
    ] = None,
    top_k: TopK = None,
    model_version: Annotated[
        str | None, typer.Option(help="Registered version or alias (default champion).")
    ] = None,
    n_shards: NShards = None,
    shard_users: ShardUsers = None,
    workers: Workers = None,
    runner: ScoringRunner = None,
    dask_address: DaskAddress = None,
    explore_share: ExploreShare = None,
    repurchase: Repurchase = None,
    category_cap: CategoryCap = None,
    exclude_items: ExcludeItems = None,
    allow_shrink: AllowShrink = False,
    wait: Wait = None,
) -> None:
    """Score every user with the champion and publish a new table version (a Prefect flow)."""
    settings = prepare(data_dir)
    from recpipe.params import RecommendParams

    params = RecommendParams(
        data_dir=str(settings.data_path),
        as_of=as_of,
        **_recommend_values(
            top_k, n_shards, shard_users, workers, runner, dask_address, explore_share,
            repurchase, category_cap, exclude_items, allow_shrink, model_version,
        ),
    )  # fmt: skip
    existing_file(exclude_items, "--exclude-items")
    with writing(settings, "recommend", wait):
        cutoff_after_first_event(settings, as_of)
        recommend_flow = flow_of("recommend", "recommend_flow")
        result = recommend_flow(params)
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
    events: Annotated[
        str | None, typer.Option(help="Event file, directory or glob (or `events` in --config).")
    ] = None,
    items: Annotated[str | None, typer.Option(help="Item catalogue file.")] = None,
    users: Annotated[str | None, typer.Option(help="Users file.")] = None,
    data_dir: DataDir = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Use only events before this (UTC).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file of the run's parameters, as the `run` flow takes them (events, and "
            "tables train, train.als, train.ranker, recommend, ...); options given here win."
        ),
    ] = None,
    max_bad_row_share: MaxBadRowShare = None,
    min_ts: MinTs = None,
    event_map: EventMap = None,
    horizon_days: HorizonDays = None,
    factors: Factors = None,
    iterations: Iterations = None,
    n_estimators: NEstimators = None,
    experiment: Experiment = None,
    force_promote: ForcePromote = False,
    top_k: TopK = None,
    n_shards: NShards = None,
    shard_users: ShardUsers = None,
    workers: Workers = None,
    runner: ScoringRunner = None,
    dask_address: DaskAddress = None,
    explore_share: ExploreShare = None,
    repurchase: Repurchase = None,
    category_cap: CategoryCap = None,
    exclude_items: ExcludeItems = None,
    allow_shrink: AllowShrink = False,
    wait: Wait = None,
) -> None:
    """The whole pipeline: ingest -> features -> train -> recommend (one parent Prefect flow);
    takes the training and recommendation options of `train` and `recommend`."""
    settings = prepare(data_dir)
    from recpipe.params import RunParams

    values = _config_values(config)
    overrides = given(events=events, items=items, users=users, as_of=as_of)
    overrides |= _ingest_values(max_bad_row_share, min_ts, event_map)
    train_values = _train_values(
        horizon_days, factors, iterations, n_estimators, experiment, force_promote
    )
    recommend_values = _recommend_values(
        top_k, n_shards, shard_users, workers, runner, dask_address, explore_share,
        repurchase, category_cap, exclude_items, allow_shrink,
    )  # fmt: skip
    values = _merged(values, overrides | {"train": train_values, "recommend": recommend_values})
    if not values.get("events"):
        raise InputError("--events is required (or `events` in the --config file)")
    _run_pipeline(settings, RunParams.model_validate(values), wait)


def _run_pipeline(settings: Settings, params, wait: float | None) -> dict:
    """Check the run's inputs, run the pipeline flow as the data directory's writer, print the
    summary (`run` and `demo`)."""
    from recpipe.configs import ingest_settings

    params = params.model_copy(update={"data_dir": str(settings.data_path)})
    ingest_settings(params.ingest_params())  # a bad ingest option fails before Prefect starts
    existing_inputs(params.events, params.items, params.users)
    existing_file(params.recommend.exclude_items_file, "--exclude-items")
    with writing(settings, "run", wait):
        run_flow = flow_of("pipeline", "run_flow")
        from recpipe.tasks.common.expectation_suites import warm_up

        warm_up()  # after the flow's imports: it overlaps the flow start-up's waits instead
        result = run_flow(params)
    typer.echo(_run_summary(result, settings))
    return result


def _config_values(path: Path | None) -> dict:
    """The parameters in a TOML --config file ({} without one)."""
    if path is None:
        return {}
    import tomllib

    existing_file(path, "--config")
    try:
        return tomllib.loads(Path(path).read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"--config {path}: not valid TOML ({exc})") from None


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over`'s values on top, nested tables merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


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
    from recpipe.params import RunParams

    params = RunParams(
        events=str(shop / "events"),
        items=str(shop / "items.parquet"),
        users=str(shop / "users.parquet"),
    )
    _run_pipeline(settings, params, wait=None)


@app.command()
@command
def bench(
    preset: Annotated[
        str, typer.Option(help="Synthetic shop preset: tiny, small, demo, medium or large.")
    ] = "medium",
    out: Annotated[
        Path, typer.Option(help="Benchmark directory: the shop (kept), data (wiped), reports.")
    ] = Path("bench-out"),
    events: Annotated[
        int | None, typer.Option(help="Resize the shop: about this many events (scaling runs).")
    ] = None,
    users: Annotated[int | None, typer.Option(help="Resize the shop: this many users.")] = None,
    workers: Workers = None,
    runner: ScoringRunner = None,
    floors: Annotated[
        bool, typer.Option(help="Also time each stage's floor on the same data.")
    ] = True,
    mlflow: Annotated[
        bool, typer.Option(help="Log the stage timings as metrics of the run's MLflow run.")
    ] = True,
) -> None:
    """Run the whole pipeline once on a generated shop (generated into OUT on first use) and
    report each stage's wall time, CPU time, peak RSS and rows against its floor: OUT/bench.md,
    bench.json, bench.png, and `bench.*` metrics of the training run."""
    out = Path(out).expanduser().resolve()
    from recpipe.tasks.benchmark.pipeline_benchmark import benchmark_name

    name = benchmark_name(preset, events, users)
    data_dir = out / name / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # a fresh data directory: ingest to publish
    settings = prepare(data_dir)
    from recpipe.params import ALSParams, CandidateConfig, RunParams
    from recpipe.tasks.benchmark.pipeline_benchmark import benchmark_shop, pipeline_benchmark
    from recpipe.tasks.benchmark.stage_metrics import log_stage_metrics

    shop = benchmark_shop(out / name / "shop", preset, **given(target_events=events, n_users=users))
    params = RunParams(
        events=str(shop / "events"),
        items=str(shop / "items.parquet"),
        users=str(shop / "users.parquet"),
        recommend=given(workers=workers, runner=runner),
    )
    als = ALSParams()
    result = pipeline_benchmark(
        lambda: _run_pipeline(settings, params, wait=None),
        [params.events, params.items, params.users],
        data_dir,
        out / name,
        name,
        factors=als.factors,
        iterations=als.iterations,
        n_mf=CandidateConfig().n_mf,
        floors=floors,
    )
    if mlflow and result.totals.get("run_id"):
        log_stage_metrics(
            settings.tracking_uri, result.totals["run_id"], result.rows, result.totals
        )
    typer.echo("")
    typer.echo(result.markdown)
    typer.echo(f"reports: {', '.join(str(p) for p in result.paths.values())}")


@app.command()
@command
def recs(
    user_id: Annotated[str, typer.Argument(help="The user whose list to show.")],
    data_dir: DataDir = None,
) -> None:
    """Print one user's current recommendations with sources and item categories."""
    settings = prepare(data_dir, writes=False)
    from recpipe.tasks.serving.recommendation_lookup import user_list

    version, df, default = user_list(settings.recommendations_dir, settings.lake_dir, user_id)
    if df.empty:
        typer.echo(f"user {user_id} has no recommendations in version {version}")
        raise typer.Exit(1)
    if default:
        typer.echo(f"user {user_id} is not in version {version}: the list for new users and guests")
    typer.echo(f"user {user_id} - version {version} - model v{df['model_version'].iloc[0]}")
    typer.echo(
        df[["rank", "item_id", "category", "source", "score", "propensity"]].to_string(index=False)
    )


@app.command()
@command
def up(
    data_dir: DataDir = None,
    backend: Annotated[
        str,
        typer.Option(help="sqlite (files in the data directory) or postgresql://user:pw@host/db."),
    ] = "sqlite",
    prefect_port: Annotated[int, typer.Option(help="Prefect server (UI and API) port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow tracking server (and UI) port.")] = 5000,
) -> None:
    """Start a Prefect server and an MLflow tracking server for the data directory."""
    from recpipe import servers as srv

    settings = prepare(data_dir)
    started = srv.up(settings.data_path, backend, prefect_port, mlflow_port)
    for server in started:
        typer.echo(f"{server.name:8s} {server.url}  (pid {server.pid}, log {server.log})")
    env = srv.client_environment(settings.data_path)
    typer.echo(
        "recpipe commands with this --data-dir report to these servers; elsewhere export:\n"
        + "\n".join(f"export {k}={v}" for k, v in env.items() if k != "MLFLOW_TRACKING_URI")
    )


def _deployment_plan(settings: Settings, inbox, nightly_cron, weekly_cron):
    if not os.environ.get("PREFECT_API_URL"):
        raise InputError(
            "no Prefect server: start one with `recpipe up --data-dir DIR` (this command then "
            "finds it) or set PREFECT_API_URL"
        )
    from recpipe.flows.deployments import DeploymentPlan

    return DeploymentPlan(
        data_dir=settings.data_path,
        tracking_uri=settings.tracking_uri,
        inbox=Path(inbox).resolve() if inbox else settings.data_path / "inbox",
        **given(nightly_cron=nightly_cron, weekly_cron=weekly_cron),
    )


Inbox = Annotated[
    Path | None, typer.Option(help="Directory the `ingest` deployment reads (default DIR/inbox).")
]
NightlyCron = Annotated[
    str | None, typer.Option(help="nightly-refresh schedule, UTC cron (default 30 2 * * *).")
]
WeeklyCron = Annotated[
    str | None, typer.Option(help="weekly-retrain schedule, UTC cron (default 0 3 * * 0).")
]


@app.command()
@command
def deploy(
    data_dir: DataDir = None,
    pool: Annotated[str, typer.Option(help="Prefect work pool (process type).")] = "recpipe",
    inbox: Inbox = None,
    nightly_cron: NightlyCron = None,
    weekly_cron: WeeklyCron = None,
) -> None:
    """Create or update the deployments (nightly-refresh, weekly-retrain, retrain, ingest) in a
    work pool on the Prefect server; a worker runs them."""
    settings = prepare(data_dir)
    plan = _deployment_plan(settings, inbox, nightly_cron, weekly_cron)
    from recpipe.flows.deployments import applied_deployments

    for name, deployment_id in applied_deployments(plan, pool).items():
        typer.echo(f"deployment {name:16s} {deployment_id}")
    typer.echo(
        f"start a worker: PREFECT_API_URL={os.environ['PREFECT_API_URL']} "
        f"{Path(sys.executable).parent / 'prefect'} worker start --pool {pool}"
    )


@app.command()
@command
def serve(
    data_dir: DataDir = None,
    inbox: Inbox = None,
    nightly_cron: NightlyCron = None,
    weekly_cron: WeeklyCron = None,
) -> None:
    """Register the deployments and run them from this process (one machine, no work pool)
    until stopped with Ctrl-C."""
    settings = prepare(data_dir)
    plan = _deployment_plan(settings, inbox, nightly_cron, weekly_cron)
    from prefect import serve as prefect_serve

    from recpipe.flows.deployments import recpipe_deployments, run_environment

    os.environ.update(run_environment(plan))  # the served runs' environment
    prefect_serve(*recpipe_deployments(plan, in_pool=False))


@app.command()
@command
def status(data_dir: DataDir = None) -> None:
    """Show the servers `recpipe up` started for the data directory."""
    from recpipe import servers as srv

    settings = prepare(data_dir, writes=False)
    live = srv.running(settings.data_path)
    if not live:
        typer.echo(f"no servers running for {settings.data_path} (start them with `recpipe up`)")
        raise typer.Exit(1)
    for server in live:
        health = "healthy" if srv.healthy(server.health) else "not answering"
        typer.echo(f"{server.name:8s} {server.url}  pid {server.pid}  {health}")


@app.command()
@command
def down(data_dir: DataDir = None) -> None:
    """Stop the servers `recpipe up` started for the data directory."""
    from recpipe import servers as srv

    settings = prepare(data_dir, writes=False)
    stopped = srv.down(settings.data_path)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def _run_summary(result: dict, settings: Settings) -> str:
    recs_ = result["recommend"]
    return "\n".join(
        [
            _training_summary(result["train"]),
            "",
            f"recommendations: {recs_['n_users']:,} users x K -> {recs_['path']} (version {recs_['version']})",
            f"DuckDB: {settings.warehouse_path} (view `recommendations`); rows by source: {recs_['by_source']}",
            f"UIs (Prefect and MLflow servers): .venv/bin/recpipe up --data-dir {settings.data_path}",
            f"one user's list: .venv/bin/recpipe recs USER_ID --data-dir {settings.data_path}",
        ]
    )


def _training_summary(result: dict) -> str:
    from recpipe.tasks.evaluation.offline_evaluation import BASELINES

    m = result["metrics"]
    nan = float("nan")
    trained = "lift.ndcg_at_10_over_best_baseline" in m  # else a baseline fallback run
    rows = [("ranker" if trained else "served (best baseline)", "")]
    rows += [(f"baseline.{b}", f"baseline.{b}.") for b in BASELINES]
    lines = [f"{'model':28s} {'ndcg_at_10':>10s} {'recall_at_20':>12s}"]
    for name, prefix in rows:
        lines.append(
            f"{name:28s} {m.get(prefix + 'ndcg_at_10', nan):10.4f} "
            f"{m.get(prefix + 'recall_at_20', nan):12.4f}"
        )
    if trained:
        lines.append(f"lift over best baseline: {m['lift.ndcg_at_10_over_best_baseline']:+.1%}")
    else:
        lines.append("no ranker: too little data to train one; the run serves its best baseline")
    lines.append(
        f"MLflow run {result['run_id']} (experiment {result['experiment']}), "
        f"version {result['version']}: {result['reason']}"
    )
    return "\n".join(lines)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
