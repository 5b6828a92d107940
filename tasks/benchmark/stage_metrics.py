"""`bench.*` metrics on the training run's MLflow run, so runs of the benchmark compare side by
side in the MLflow UI like any training metric."""

from __future__ import annotations

import re

from recpipe.tasks.benchmark.stage_report import StageRow


def stage_metric_values(rows: list[StageRow], totals: dict) -> dict[str, float]:
    """Metric name -> value: totals, then each stage's wall, CPU, peak RSS and floor ratio."""
    values = {
        f"bench.total.{k}": float(totals[k])
        for k in ("wall_s", "cpu_s", "peak_rss_mb", "scoring_users_per_s")
        if totals.get(k) is not None
    }
    for r in rows:
        name = re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", r.stage.replace("[", ".").replace("]", ""))
        values[f"bench.{name}.wall_s"] = r.wall_s
        values[f"bench.{name}.cpu_s"] = r.cpu_s
        if r.peak_rss_mb is not None:
            values[f"bench.{name}.peak_rss_mb"] = r.peak_rss_mb
        if r.ratio is not None:
            values[f"bench.{name}.floor_ratio"] = r.ratio
    return values


def log_stage_metrics(tracking_uri: str, run_id: str, rows: list[StageRow], totals: dict) -> None:
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in stage_metric_values(rows, totals).items()]
    client = MlflowClient(tracking_uri)
    for start in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[start : start + 500])
    client.set_tag(run_id, "recpipe.bench_preset", totals["preset"])
