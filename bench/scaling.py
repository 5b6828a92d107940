"""How the pipeline grows: `recpipe bench` at 3 event counts (users fixed) and 3 user counts
(events fixed), each stage's wall time and the whole run's peak RSS, with the fitted log-log
exponent (1.0 = linear). Writes scaling.json, scaling.md and scaling.png under --out.

    .venv/bin/python bench/scaling.py --out /tmp/scaling            # 1M, 3M, 10M events; 50k-200k users
    .venv/bin/python bench/scaling.py --events 1e6,1e7,3e7 --users 2e5   # one series only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from recpipe.tasks.benchmark.stage_growth import exponent

PRESET = "medium"  # 10M events, 200k users, 50k items; other sizes resize it
BASE_EVENTS, BASE_USERS = 10_000_000, 200_000
STAGES = ("ingest", "features", "als[train]", "training_set", "ranker", "evaluation", "scoring")


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def bench_point(out: Path, events: int, users: int) -> dict:
    name = PRESET
    args = [str(Path(sys.executable).parent / "recpipe"), "bench", "--preset", PRESET,
            "--out", str(out), "--no-floors", "--no-mlflow"]  # fmt: skip
    if events != BASE_EVENTS:
        args += ["--events", str(events)]
        name += f"-{events}e"
    if users != BASE_USERS:
        args += ["--users", str(users)]
        name += f"-{users}u"
    report = out / name / "bench.json"
    if not report.exists():
        with open(out / f"{name}.log", "w") as log:
            subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, check=True)
    data = json.loads(report.read_text())
    stages = {s["stage"]: s["wall_s"] for s in data["stages"]}
    return {
        "name": name,
        "events": data["totals"]["events_landed"],
        "users": data["totals"]["users"],
        "wall_s": data["totals"]["wall_s"],
        "peak_rss_mb": data["totals"]["peak_rss_mb"],
        "stages": {k: stages.get(k) for k in STAGES},
    }


def series_table(points: list[dict], by: str) -> tuple[str, dict]:
    xs = [p[by] for p in points]
    fits = {"whole run": exponent(xs, [p["wall_s"] for p in points])}
    fits["peak RSS"] = exponent(xs, [p["peak_rss_mb"] for p in points])
    for s in STAGES:
        fits[s] = exponent(xs, [p["stages"][s] for p in points])
    head = "| " + by + " | wall s | peak RSS MB | " + " | ".join(STAGES) + " |"
    lines = [head, "|" + "---:|" * (3 + len(STAGES))]
    for p in points:
        cells = [f"{p[by]:,}", f"{p['wall_s']:.1f}", f"{p['peak_rss_mb']:,.0f}"]
        cells += [f"{p['stages'][s]:.1f}" if p["stages"][s] else "" for s in STAGES]
        lines.append("| " + " | ".join(cells) + " |")
    fit_cells = [_fmt(fits["whole run"]), _fmt(fits["peak RSS"])] + [_fmt(fits[s]) for s in STAGES]
    lines.append("| exponent | " + " | ".join(fit_cells) + " |")
    return "\n".join(lines), fits


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/recpipe-scaling"))
    ap.add_argument("--events", default="1e6,3e6,1e7", help="event counts, users fixed")
    ap.add_argument("--users", default="5e4,1e5,2e5", help="user counts, events fixed")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result, md = {}, []
    for by, values, fixed in (("events", _ints(args.events), {"users": BASE_USERS}),
                              ("users", _ints(args.users), {"events": BASE_EVENTS})):  # fmt: skip
        if len(values) < 2:
            continue
        points = [bench_point(args.out, **({by: v} | fixed)) for v in values]
        table, fits = series_table(points, by)
        result[by] = {"points": points, "exponents": fits}
        fixed_text = ", ".join(f"{k} {v:,}" for k, v in fixed.items())
        md += [f"### growth with {by} ({fixed_text})", "", table, ""]
    (args.out / "scaling.json").write_text(json.dumps(result, indent=1))
    (args.out / "scaling.md").write_text("\n".join(md) + "\n")
    _plot(result, args.out / "scaling.png")
    print("\n".join(md))


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result) or 1, figsize=(6 * max(len(result), 1), 4))
    for ax, (by, r) in zip(np.atleast_1d(axes), result.items(), strict=False):
        xs = [p[by] for p in r["points"]]
        ax.loglog(xs, [p["wall_s"] for p in r["points"]], "o-", label="whole run (wall s)")
        ax.loglog(
            xs, [p["peak_rss_mb"] / 100 for p in r["points"]], "s--", label="peak RSS / 100 MB"
        )
        ax.set_xlabel(by)
        ax.set_title(f"exponent: time {r['exponents']['whole run']:.2f}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
