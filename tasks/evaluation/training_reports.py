"""Files a person wants to look at after a training: importance, metric@K curves, the report."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from recpipe.tasks.evaluation.report_figures import (
    evaluation_report_md,
    feature_importance_png,
    metric_curves_png,
    metrics_markdown,
)
from recpipe.tasks.features.training_windows import TrainingWindows


def training_report_files(
    out_dir: Path,
    metrics: dict[str, float],
    curves: dict[str, dict[int, float]],
    importance: dict[str, float],
    context: dict[str, str],
    validation_report: str | None = None,
) -> list[str]:
    """Write feature_importance.png, ndcg_at_k.png, evaluation_report.md (+ the ingest summary)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(importance)
    paths = [
        feature_importance_png(
            names, np.array([importance[n] for n in names]), out / "feature_importance.png"
        ),
        metric_curves_png(curves, out / "ndcg_at_k.png", metric="ndcg"),
        evaluation_report_md(
            metrics, out / "evaluation_report.md", "recpipe training run", context
        ),
    ]
    if validation_report and Path(validation_report).exists():
        paths.append(Path(shutil.copy(validation_report, out / "validation_summary.json")))
    return [str(p) for p in paths]


@dataclass
class TrainingRecord:
    """What a training run logs besides its files: metrics, tags and the report's context lines."""

    metrics: dict[str, float]
    tags: dict[str, str]
    context: dict[str, str]
    eval_window: str
    validation_report: str | None


def recpipe_version() -> str:
    """The installed recpipe package's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recpipe")
    except PackageNotFoundError:
        return "unknown"


def git_commit(repo: Path | None = None) -> str:
    """Short commit of the code that trained when it runs from a git checkout of recpipe;
    'unknown' for an installed wheel (even one installed into a venv inside another repo)."""
    here = Path(__file__).resolve()
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=repo or here.parent, timeout=5
            ).stdout.strip()

        top = git("rev-parse", "--show-toplevel")
        if repo is None and (
            not top or here != Path(top).resolve() / "tasks" / "evaluation" / here.name
        ):
            return "unknown"
        return git("rev-parse", "--short", "HEAD") or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def training_record(
    evaluation,
    feats: dict,
    emb: dict,
    tset,
    ranker,
    fingerprint: str,
    windows: TrainingWindows,
    data_dir: Path,
    lake_dir: Path,
    fallback_reason: str = "",
) -> TrainingRecord:
    """Metrics (evaluation + stage timings), tags (data fingerprint, windows, git commit) and
    the latest ingest validation summary of one training run. Without a ranker (`tset` and
    `ranker` None) the run serves its best baseline, and `fallback_reason` says why."""
    metrics = dict(evaluation.metrics)
    metrics.update(
        {
            "timing.features_seconds": sum(sum(f.seconds.values()) for f in feats.values()),
            "timing.als_seconds": sum(e.seconds for e in emb.values()),
            "train.n_windows": 1 + len(windows.earlier),
        }
    )
    if ranker is not None:
        metrics.update(
            {
                "timing.training_set_seconds": tset.seconds,
                "timing.ranker_seconds": ranker.seconds,
                "ranker.best_iteration": ranker.best_iteration,
                "ranker.valid_ndcg_at_10": ranker.best_score,
                "train.n_rows": tset.n_rows,
                "train.n_groups": tset.n_groups,
            }
        )
    as_of, eval_window, train_window = windows.serve, windows.eval_window, windows.train_window
    tags = {
        "data_fingerprint": fingerprint,
        "as_of": as_of.isoformat(),
        "eval_window": eval_window,
        "train_window": train_window,
        "git_commit": git_commit(),
        "recpipe_version": recpipe_version(),
        "best_baseline": evaluation.best_baseline,
        "data_dir": str(data_dir),
    } | ({"windows.note": windows.note} if windows.note else {})
    context = {
        "as_of": as_of.isoformat(),
        "evaluation window": eval_window,
        "training window": train_window,
        "data fingerprint": fingerprint,
    } | ({"short log": windows.note} if windows.note else {})
    if ranker is None:
        served = f"no ranker ({fallback_reason}): serves baseline {evaluation.best_baseline}"
        tags["served"] = context["served"] = served
    reports = sorted((Path(lake_dir) / "_reports").glob("ingest-*.json"))
    return TrainingRecord(
        metrics, tags, context, eval_window, str(reports[-1]) if reports else None
    )


@dataclass
class TrainingSummary:
    """The outcome of one training run, as the CLI prints it and the Prefect run shows it."""

    run_id: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    as_of: datetime
    experiment: str
    markdown: str

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "promoted": self.promoted,
            "reason": self.reason,
            "metrics": self.metrics,
            "as_of": self.as_of,
            "experiment": self.experiment,
        }


def training_summary(
    record: TrainingRecord,
    run_id: str,
    version: str,
    model_name: str,
    decision,
    champion,
    experiment: str,
    as_of: datetime,
    params: dict,
) -> TrainingSummary:
    """Metrics table and context (run, version, promotion decision, how the champion scored),
    then the run's parameters (the whole configuration, flattened as in MLflow)."""
    context = dict(record.context)
    context.update(
        {
            "MLflow run": run_id,
            "model version": f"{model_name} v{version}",
            "promotion": decision.reason,
            "champion score": champion.how,
        }
    )
    return TrainingSummary(
        run_id,
        str(version),
        decision.promoted,
        decision.reason,
        record.metrics,
        as_of,
        experiment,
        metrics_markdown(record.metrics, "recpipe training run", context)
        + parameters_markdown(params),
    )


def parameters_markdown(params: dict) -> str:
    """A `parameter | value` table of the flattened parameters."""
    from recpipe.tasks.registry.model_registry import flatten_params

    rows = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(flatten_params(params).items()))
    return f"\n\n### Parameters\n\n| parameter | value |\n|---|---|\n{rows}\n"
