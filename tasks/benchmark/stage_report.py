"""The table of `recpipe bench`: stage records summed per stage, set against their floors, as
JSON, Markdown and a bar chart of where the time goes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from recpipe.tasks.benchmark.stage_floors import Floor
from recpipe.tasks.common.stage_timings import StageRecord

# stages that run inside several callers are reported per caller ("scoring_shard/candidates")
_CALLERS = ("training_set", "evaluation", "scoring_shard")

# stage -> the floor it is read against, and on what: "wall/call" (wall seconds per call: a
# feature table is built once per snapshot, the floor once) or "cpu" (CPU seconds summed over
# the calls: stages that run in several worker processes at once)
FLOOR_OF: dict[str, tuple[str, str]] = {
    "ingest": ("copy", "wall/call"),
    "features.events_asof": ("scan", "wall/call"),
    "features.user_items_asof": ("group", "wall/call"),
    "matrix[train]": ("csr", "wall/call"),
    "als[train]": ("als", "wall/call"),
    "scoring_shard/candidates": ("mf_topn", "cpu"),
    "scoring_shard/ranker_predict": ("predict", "cpu"),
}

# the order stages appear in the table (others follow in the order they ended)
_ORDER = (
    "ingest", "validation", "features", "features.", "matrix", "als", "training_set",
    "ranker", "evaluation", "shard_inputs", "scoring", "publish_checks", "publish",
)  # fmt: skip


@dataclass
class StageRow:
    stage: str
    calls: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float | None
    rows_in: int | None
    rows_out: int | None
    depth: int
    floor: str | None = None
    floor_s: float | None = None
    ratio: float | None = None
    ratio_on: str | None = None


def stage_key(r: StageRecord) -> str:
    name = f"{r.parent}/{r.name}" if r.parent in _CALLERS else r.name
    if r.name in ("matrix", "als"):  # the train snapshot's fit is the one the floor repeats
        name += f"[{r.part}]"
    return name


def stage_rows(records: list[StageRecord], floors: dict[str, Floor]) -> list[StageRow]:
    """One row per stage key: calls, summed wall and CPU seconds and rows, the largest peak."""
    rows: dict[str, StageRow] = {}
    for r in records:
        key = stage_key(r)
        row = rows.get(key)
        if row is None:
            row = rows[key] = StageRow(key, 0, 0.0, 0.0, None, None, None, r.depth)
        row.calls += 1
        row.wall_s += r.wall_s
        row.cpu_s += r.cpu_s
        if r.peak_rss_mb is not None:
            row.peak_rss_mb = max(row.peak_rss_mb or 0.0, r.peak_rss_mb)
        if r.rows_in is not None:
            row.rows_in = (row.rows_in or 0) + r.rows_in
        if r.rows_out is not None:
            row.rows_out = (row.rows_out or 0) + r.rows_out
        row.depth = min(row.depth, r.depth)
    for key, (floor_name, on) in FLOOR_OF.items():
        if key in rows and floor_name in floors:
            row, floor = rows[key], floors[floor_name]
            row.floor, row.ratio_on = floor_name, on
            row.floor_s = floor.wall_s if on == "wall/call" else floor.cpu_s
            spent = row.wall_s / row.calls if on == "wall/call" else row.cpu_s
            row.ratio = spent / row.floor_s if row.floor_s > 0 else None
    return sorted(rows.values(), key=_order)


def _order(row: StageRow) -> tuple[int, str]:
    base = row.stage.split("/")[0].split("[")[0]
    for n, prefix in enumerate(_ORDER):
        if base == prefix or (prefix.endswith(".") and base.startswith(prefix)):
            return n, ""  # stable sort keeps the end order within a group
    return len(_ORDER), ""


def markdown_table(rows: list[StageRow], floors: dict[str, Floor], totals: dict) -> str:
    lines = [
        f"whole run: {totals['wall_s']:.1f} s wall, {totals['cpu_s']:.1f} s CPU (children "
        f"included), peak RSS {totals['peak_rss_mb']:,.0f} MB (largest process)",
        "",
        "Indented stages run inside the stage above them; a stage called several times (once per "
        "snapshot, batch or shard) shows sums. ratio = the stage's wall seconds per call (or its "
        "CPU seconds, for stages spread over worker processes) over its floor's.",
        "",
        "| stage | calls | wall s | CPU s | peak RSS MB | rows in | rows out | floor | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        indent = "&nbsp;&nbsp;" * r.depth
        floor = f"{r.floor} {r.floor_s:.2f} s ({r.ratio_on})" if r.floor else ""
        lines.append(
            f"| {indent}{r.stage} | {r.calls} | {r.wall_s:.2f} | {r.cpu_s:.2f} | "
            f"{_num(r.peak_rss_mb)} | {_num(r.rows_in)} | {_num(r.rows_out)} | {floor} | "
            f"{'' if r.ratio is None else f'{r.ratio:.2f}x'} |"
        )
    lines += ["", "| floor | wall s | CPU s | rows | what |", "|---|---:|---:|---:|---|"]
    for f in floors.values():
        lines.append(f"| {f.name} | {f.wall_s:.2f} | {f.cpu_s:.2f} | {f.rows:,} | {f.what} |")
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value:,.1f}"


def write_reports(
    out_dir: Path,
    rows: list[StageRow],
    floors: dict[str, Floor],
    totals: dict,
    records: list[StageRecord],
) -> dict[str, Path]:
    """bench.json, bench.md and bench.png (top-level stages' wall seconds) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"bench.{k}" for k in ("json", "md", "png")}
    paths["json"].write_text(
        json.dumps(
            {
                "totals": totals,
                "stages": [asdict(r) for r in rows],
                "floors": {k: asdict(v) for k, v in floors.items()},
                "records": [asdict(r) for r in records],
            },
            indent=1,
            default=str,
        )
    )
    paths["md"].write_text(markdown_table(rows, floors, totals))
    _plot(rows, totals, paths["png"])
    return paths


def _plot(rows: list[StageRow], totals: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = [r for r in rows if r.depth == 0 and not r.stage.startswith("scoring_shard")]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top) + 1.5))
    ax.barh([r.stage for r in top][::-1], [r.wall_s for r in top][::-1], color="#4c72b0")
    ax.set_xlabel("wall seconds")
    ax.set_title(f"where the time goes ({totals['preset']}, {totals['wall_s']:.0f} s in all)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
