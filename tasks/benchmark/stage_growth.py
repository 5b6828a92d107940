"""How each stage of `recpipe bench` grows between reports of different sizes (e.g. `medium`
and `large`): its wall seconds at each size, the fitted log-log exponent in landed events (1.0
is linear), and beside it the exponent of its floor, measured the same way in the same runs.

A stage that grows faster than linear but no faster than its floor grows with the work itself
(hash tables and matrices that outgrow the caches), not with something the stage adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GrowthRow:
    stage: str
    wall_s: list[float]
    exponent: float | None
    floor: str | None = None
    floor_s: list[float] | None = None
    floor_exponent: float | None = None


def exponent(x: list[float], y: list[float]) -> float | None:
    """Slope of log(y) on log(x) over the points where both are positive (None below two)."""
    pts = [(a, b) for a, b in zip(x, y, strict=True) if a and b and a > 0 and b > 0]
    if len(pts) < 2 or len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def stage_growth(reports: list[dict]) -> tuple[list[float], list[GrowthRow]]:
    """The landed events of each report and one row per stage every report has, in the first
    report's order, plus the whole run (`total`)."""
    events = [float(r["totals"]["events_landed"]) for r in reports]
    by_stage = [{s["stage"]: s for s in r["stages"]} for r in reports]
    totals = [float(r["totals"]["wall_s"]) for r in reports]
    rows = [GrowthRow("total", totals, exponent(events, totals))]
    for name, first in by_stage[0].items():
        if not all(name in stages for stages in by_stage):
            continue
        walls = [stages[name]["wall_s"] for stages in by_stage]
        row = GrowthRow(name, walls, exponent(events, walls))
        floor = first.get("floor")
        if floor and all(floor in r.get("floors", {}) for r in reports):
            row.floor = floor
            row.floor_s = [r["floors"][floor]["wall_s"] for r in reports]
            row.floor_exponent = exponent(events, row.floor_s)
        rows.append(row)
    return events, rows


def growth_markdown(names: list[str], reports: list[dict]) -> str:
    events, rows = stage_growth(reports)
    head = " | ".join(f"{n} s" for n in names)
    lines = [
        "landed events: " + ", ".join(f"{n} {e:,.0f}" for n, e in zip(names, events, strict=True)),
        "",
        f"| stage | {head} | exponent | floor | floor s | floor exponent |",
        "|---|" + "---:|" * len(names) + "---:|---|---|---:|",
    ]
    for r in rows:
        walls = " | ".join(f"{w:,.2f}" for w in r.wall_s)
        floor_s = ", ".join(f"{w:,.2f}" for w in r.floor_s) if r.floor_s else ""
        lines.append(
            f"| {r.stage} | {walls} | {_fmt(r.exponent)} | {r.floor or ''} | {floor_s} "
            f"| {_fmt(r.floor_exponent)} |"
        )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"
