"""Figures and a Markdown report for one training/evaluation run.

Matplotlib is imported inside the functions and drawn through the Agg canvas directly
(``Figure`` + ``FigureCanvasAgg``), so nothing here touches pyplot's global backend or
state; the functions are safe to call from worker threads and from tests.

Metric key conventions understood by :func:`metrics_markdown`:

* ``<metric>``                          -- the ranker (e.g. ``ndcg_at_10``)
* ``baseline.<name>.<metric>``          -- one row per baseline (``<name>`` may contain dots)
* ``segment.<name>.<metric>``           -- one row per user segment
* ``candidates.<metric>``               -- candidate-generation recall etc.
* ``lift.ndcg_at_10_over_best_baseline`` -- printed as a sentence
* anything else (``timing.*`` ...)      -- listed under "Other metrics"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "MODEL_TABLE_COLUMNS",
    "evaluation_report_md",
    "feature_importance_png",
    "metric_curves_png",
    "metrics_markdown",
]

MODEL_TABLE_COLUMNS: tuple[str, ...] = (
    "ndcg_at_10",
    "recall_at_20",
    "map_at_10",
    "precision_at_10",
    "hit_rate_at_10",
    "mrr",
)
LIFT_KEY = "lift.ndcg_at_10_over_best_baseline"
_MISSING = "–"


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # attaches the Agg canvas to the figure
    return fig


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def feature_importance_png(names: list[str], gains: np.ndarray, path: Path, top: int = 30) -> Path:
    """Horizontal bar chart of the `top` features by gain importance (largest at the top)."""
    gains = np.asarray(gains, dtype=float).ravel()
    if len(names) != gains.shape[0]:
        raise ValueError(f"{len(names)} feature names but {gains.shape[0]} gain values")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")

    order = np.argsort(-np.nan_to_num(gains, nan=-np.inf), kind="stable")[:top]
    shown_names = [str(names[i]) for i in order][::-1]
    shown_gains = gains[order][::-1]

    fig = _new_figure(8.0, max(2.5, 0.3 * len(shown_names) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    if len(shown_names) == 0:
        ax.text(0.5, 0.5, "no features", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        y = np.arange(len(shown_names))
        ax.barh(y, shown_gains, color="#4C72B0")
        ax.set_yticks(y)
        ax.set_yticklabels(shown_names, fontsize=8)
        ax.set_xlabel("gain")
        ax.grid(axis="x", alpha=0.3)
    shown = min(top, len(names))
    ax.set_title(f"Feature importance (gain), top {shown} of {len(names)}")
    return _save(fig, path)


def metric_curves_png(
    curves: dict[str, dict[int, float]], path: Path, metric: str = "ndcg"
) -> Path:
    """One line per model (``"ranker"``, ``"baseline.popularity"`` ...) of `metric`@K over K."""
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    plotted = 0
    all_ks: set[int] = set()
    for name, curve in curves.items():
        if not curve:
            continue
        points = sorted((int(k), float(v)) for k, v in curve.items())
        ks = [k for k, _ in points]
        values = [v for _, v in points]
        all_ks.update(ks)
        style = "-" if name == "ranker" else "--"
        ax.plot(
            ks,
            values,
            style,
            marker="o",
            markersize=3,
            label=str(name),
            linewidth=2.0 if name == "ranker" else 1.2,
        )
        plotted += 1
    if plotted == 0:
        ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8, loc="best")
        if len(all_ks) <= 12:
            ax.set_xticks(sorted(all_ks))
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.set_title(f"{metric}@K by model")
    ax.grid(alpha=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------- markdown


def _fmt(value: float | None) -> str:
    if value is None:
        return _MISSING
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) >= 1:
        return str(int(v))
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    return f"{v:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _split_prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, dict[str, float]]:
    """``prefix.<name>.<metric>`` -> {name: {metric: value}} (name may contain dots)."""
    groups: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if not key.startswith(prefix + "."):
            continue
        rest = key[len(prefix) + 1 :]
        if "." not in rest:
            continue
        name, metric = rest.rsplit(".", 1)
        groups.setdefault(name, {})[metric] = value
    return groups


def _ordered_columns(groups: Mapping[str, Mapping[str, float]]) -> list[str]:
    present = {m for g in groups.values() for m in g}
    cols = [c for c in MODEL_TABLE_COLUMNS if c in present]
    cols += sorted(present - set(cols))
    return cols


def metrics_markdown(
    metrics: Mapping[str, float], title: str, context: Mapping[str, str] | None = None
) -> str:
    """The evaluation report as Markdown text (also used as a Prefect artifact)."""
    metrics = dict(metrics)
    used: set[str] = set()
    lines: list[str] = [f"# {title}", ""]

    if context:
        for key, value in context.items():
            lines.append(f"- **{key}**: {value}")
        lines.append("")

    # Models: ranker + baselines
    baselines = _split_prefixed(metrics, "baseline")
    ranker = {k: v for k, v in metrics.items() if "." not in k}
    lines += ["## Models", ""]
    header = ["model", *MODEL_TABLE_COLUMNS]
    rows = [["ranker", *[_fmt(ranker.get(c)) for c in MODEL_TABLE_COLUMNS]]]
    used.update(c for c in MODEL_TABLE_COLUMNS if c in ranker)
    for name in sorted(baselines):
        vals = baselines[name]
        rows.append([name, *[_fmt(vals.get(c)) for c in MODEL_TABLE_COLUMNS]])
        used.update(f"baseline.{name}.{c}" for c in MODEL_TABLE_COLUMNS if c in vals)
    lines += _table(header, rows)
    lines.append("")

    if LIFT_KEY in metrics:
        best = max(
            (
                (name, vals["ndcg_at_10"])
                for name, vals in baselines.items()
                if "ndcg_at_10" in vals and not math.isnan(float(vals["ndcg_at_10"]))
            ),
            key=lambda item: float(item[1]),
            default=None,
        )
        best_text = f" (best baseline: {best[0]}, {_fmt(best[1])})" if best else ""
        lines.append(f"**Lift** `{LIFT_KEY}` = {_fmt(metrics[LIFT_KEY])}{best_text}")
        lines.append("")
        used.add(LIFT_KEY)

    # Segments
    segments = _split_prefixed(metrics, "segment")
    if segments:
        cols = _ordered_columns(segments)
        lines += ["## Segments", ""]
        rows = [[name, *[_fmt(segments[name].get(c)) for c in cols]] for name in sorted(segments)]
        lines += _table(["segment", *cols], rows)
        lines.append("")
        used.update(f"segment.{n}.{m}" for n, g in segments.items() for m in g)

    # Candidate generation
    candidates = {k: v for k, v in metrics.items() if k.startswith("candidates.")}
    if candidates:
        lines += ["## Candidate generation", ""]
        rows = [[k[len("candidates.") :], _fmt(v)] for k, v in sorted(candidates.items())]
        lines += _table(["metric", "value"], rows)
        lines.append("")
        used.update(candidates)

    # Everything else (extra ranker metrics, extra baseline metrics, timings ...)
    other = {k: v for k, v in metrics.items() if k not in used}
    if other:
        lines += ["## Other metrics", ""]
        lines += _table(["metric", "value"], [[k, _fmt(v)] for k, v in sorted(other.items())])
        lines.append("")

    return "\n".join(lines).rstrip() + "\n"


def evaluation_report_md(
    metrics: dict[str, float], path: Path, title: str, context: dict[str, str]
) -> Path:
    """Write :func:`metrics_markdown` to `path` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(metrics_markdown(metrics, title, context), encoding="utf-8")
    return path
