"""Files a person wants to look at after a training: importance, metric@K curves, the report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tasks.report_figures import evaluation_report_md, feature_importance_png, metric_curves_png


def training_report_files(out_dir: Path, metrics: dict[str, float], curves: dict[str, dict[int, float]],
                          importance: dict[str, float], context: dict[str, str],
                          validation_report: str | None = None) -> list[str]:
    """Write feature_importance.png, ndcg_at_k.png, evaluation_report.md (+ the ingest summary)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(importance)
    paths = [
        feature_importance_png(names, np.array([importance[n] for n in names]), out / "feature_importance.png"),
        metric_curves_png(curves, out / "ndcg_at_k.png", metric="ndcg"),
        evaluation_report_md(metrics, out / "evaluation_report.md", "recpipe training run", context),
    ]
    if validation_report and Path(validation_report).exists():
        paths.append(Path(shutil.copy(validation_report, out / "validation_summary.json")))
    return [str(p) for p in paths]
