"""`recpipe bench`: the whole pipeline once on a generated shop, every stage measured, then the
floors on the same data, and the report (JSON, Markdown, plot, MLflow metrics of the run).

The pipeline is given to `pipeline_benchmark` as a callable (the CLI runs the `run` flow as
`recpipe run` does), so the numbers are those of the command a shop runs. Stage records come
from `RECPIPE_STAGE_LOG`, which worker processes inherit.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recpipe.tasks.benchmark import stage_floors
from recpipe.tasks.benchmark.stage_report import StageRow, stage_rows, write_reports
from recpipe.tasks.common.stage_timings import (
    STAGE_LOG_ENV,
    read_stage_log,
)


@dataclass
class BenchmarkResult:
    rows: list[StageRow]
    totals: dict
    paths: dict[str, Path]
    markdown: str


def benchmark_shop(shop_dir: Path, preset: str, **overrides: int) -> Path:
    """The generated shop of `preset` (with `overrides` of its size, e.g. target_events or
    n_users) in `shop_dir`, written once and reused by later runs."""
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    if not (shop_dir / "items.parquet").exists():
        synthetic_shop(shop_dir, preset, seed=42, **overrides)
    return shop_dir


def benchmark_name(preset: str, events: int | None, users: int | None) -> str:
    """`medium`, or `medium-3000000e-100000u` for a resized shop."""
    return preset + (f"-{events}e" if events else "") + (f"-{users}u" if users else "")


def pipeline_benchmark(
    run_pipeline: Callable[[], dict],
    sources: list[str],
    data_dir: Path,
    out_dir: Path,
    preset: str,
    factors: int,
    iterations: int,
    n_mf: int,
    floors: bool = True,
) -> BenchmarkResult:
    """Run `run_pipeline` (which writes under `data_dir`) with stage logging into
    `out_dir/stages.jsonl`, then the floors on its data (`sources`: the files its ingest is
    given, one spec per kind); write and return the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "stages.jsonl"
    log.unlink(missing_ok=True)
    previous = os.environ.get(STAGE_LOG_ENV)
    os.environ[STAGE_LOG_ENV] = str(log)
    try:
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = run_pipeline()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        if previous is None:
            os.environ.pop(STAGE_LOG_ENV, None)
        else:
            os.environ[STAGE_LOG_ENV] = previous
    records = read_stage_log(log)
    # The largest single process. ru_maxrss alone misses peaks: each stage resets the kernel's
    # high-water mark (clear_refs), which ru_maxrss reads, so the stages' own peaks count too.
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # Linux reports KiB
        children.ru_maxrss,
        *(r.peak_rss_mb * 1024 for r in records if r.peak_rss_mb is not None),
    )
    totals = {
        "preset": preset,
        "wall_s": round(wall, 2),
        "cpu_s": round(
            cpu
            + (children.ru_utime - children0.ru_utime)
            + (children.ru_stime - children0.ru_stime),
            2,
        ),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "users": result["recommend"]["n_users"],
        "rows_published": result["recommend"]["n_rows"],
        "events_landed": result["ingest"].get("rows_landed"),
        "scoring_users_per_s": round(
            result["recommend"]["n_users"] / max(result["recommend"]["scoring_seconds"], 1e-9), 1
        ),
        "run_id": result["train"].get("run_id"),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "load_avg_1m": os.getloadavg()[0],
    }
    measured = _floors(data_dir, sources, factors, iterations, n_mf, records) if floors else {}
    rows = stage_rows(records, measured)
    paths = write_reports(out_dir, rows, measured, totals, records)
    return BenchmarkResult(rows, totals, paths, paths["md"].read_text())


def _floors(
    data_dir: Path, sources: list[str], factors: int, iterations: int, n_mf: int, records
) -> dict[str, stage_floors.Floor]:
    from recpipe.settings import load_settings
    from recpipe.tasks.candidates.ranker_features import FEATURE_NAMES
    from recpipe.tasks.registry.scoring_model import scoring_model

    settings = load_settings(data_dir=data_dir)
    threads = os.cpu_count() or 1
    out = {
        "copy": stage_floors.copy_floor(sources, data_dir),
        "scan": stage_floors.scan_floor(settings.lake_dir),
        "group": stage_floors.group_floor(settings.lake_dir),
    }
    out["csr"], matrix = stage_floors.csr_floor(settings.warehouse_path)
    out["als"] = stage_floors.als_floor(matrix, factors, iterations, threads)
    model_dir = settings.models_dir / "bench-floors"
    model = scoring_model(
        settings.tracking_uri, settings.registered_model_name, "champion", model_dir
    )
    out["mf_topn"] = stage_floors.mf_topn_floor(model.mf_path, n_mf, threads)
    scored = sum(
        r.rows_in or 0
        for r in records
        if r.name == "ranker_predict" and r.parent == "scoring_shard"
    )
    if model.booster_path and scored:
        out["predict"] = stage_floors.predict_floor(
            model.booster_path, model.ranker_lib, scored, len(FEATURE_NAMES), 1
        )
    shutil.rmtree(model_dir, ignore_errors=True)
    return out
