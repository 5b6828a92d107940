"""`recpipe bench` end to end on the tiny shop (the CI smoke run of the benchmark), and the
stage recorder it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import run_cli

from recpipe.tasks.common.stage_timings import STAGE_LOG_ENV, read_stage_log, stage

STAGES = (
    "ingest", "validation", "features.events_asof", "matrix[train]", "als[train]", "training_set",
    "ranker", "evaluation", "scoring", "scoring_shard", "scoring_shard/candidates",
    "scoring_shard/ranker_predict", "publish",
)  # fmt: skip


@pytest.mark.slow
def test_bench_on_the_tiny_shop_reports_every_stage_against_its_floor(tmp_path):
    out = run_cli("bench", "--preset", "tiny", "--out", str(tmp_path / "b"), cwd=tmp_path)
    report = json.loads((tmp_path / "b" / "tiny" / "bench.json").read_text())
    rows = {r["stage"]: r for r in report["stages"]}
    assert set(STAGES) <= set(rows), sorted(rows)
    for name in STAGES:
        assert rows[name]["wall_s"] > 0 and rows[name]["calls"] >= 1, name
    assert rows["ingest"]["rows_out"] == report["totals"]["events_landed"] > 3000
    assert rows["scoring_shard"]["rows_out"] == report["totals"]["rows_published"]
    assert report["totals"]["users"] * 20 == report["totals"]["rows_published"]
    assert set(report["floors"]) == {"copy", "scan", "group", "csr", "als", "mf_topn", "predict"}
    with_floor = {name for name, r in rows.items() if r["ratio"] is not None}
    assert with_floor == {
        "ingest", "features.events_asof", "features.user_items_asof", "matrix[train]",
        "als[train]", "scoring_shard/candidates", "scoring_shard/ranker_predict",
    }  # fmt: skip
    # the copy floor reads every row the ingest reads (events, items, users), the group floor
    # makes every (user, item) pair of the lake (the serve snapshot sees the whole lake)
    assert report["floors"]["copy"]["rows"] == rows["ingest"]["rows_in"]
    assert report["floors"]["group"]["rows"] == max(
        r["rows_out"] for r in report["records"] if r["name"] == "features.user_items_asof"
    )
    assert rows["scoring_shard"]["peak_rss_mb"] > 50  # measured in the worker processes
    # the whole run's peak is at least every stage's (the stages reset the kernel's mark)
    assert report["totals"]["peak_rss_mb"] >= max(r["peak_rss_mb"] or 0 for r in rows.values())
    assert report["totals"]["cpu_s"] >= sum(
        r["cpu_s"] for r in report["stages"] if r["stage"] == "scoring_shard"
    )  # children's CPU is counted in the total
    assert (tmp_path / "b" / "tiny" / "bench.png").stat().st_size > 5000
    assert "| ingest | 1 |" in out and "reports:" in out
    run_id = report["totals"]["run_id"]
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'b' / 'tiny' / 'data' / 'mlflow.db'}"
    metrics = MlflowClient(uri).get_run(run_id).data.metrics
    assert metrics["bench.total.wall_s"] == report["totals"]["wall_s"]
    assert metrics["bench.als.train.floor_ratio"] == pytest.approx(rows["als[train]"]["ratio"])


def test_nested_stages_record_wall_cpu_peak_and_rows(tmp_path, monkeypatch):
    import numpy as np

    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(STAGE_LOG_ENV, str(log))
    with stage("outer", rows_in=3) as outer:
        big = np.ones(40_000_000)  # 320 MB, freed before the inner stage starts
        del big
        with stage("inner") as inner:
            inner.rows_out = 7
            sum(range(2_000_000))
        outer.rows_out = 5
    inner_r, outer_r = read_stage_log(log)
    assert (inner_r.name, inner_r.parent, inner_r.depth, inner_r.rows_out) == (
        "inner",
        "outer",
        1,
        7,
    )
    assert (outer_r.name, outer_r.parent, outer_r.rows_in, outer_r.rows_out) == (
        "outer",
        None,
        3,
        5,
    )
    assert outer_r.wall_s >= inner_r.wall_s > 0 and inner_r.cpu_s > 0
    assert outer_r.peak_rss_mb > inner_r.peak_rss_mb + 250  # the outer peak survives the reset


def test_without_the_log_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(STAGE_LOG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with stage("quiet") as s:
        s.rows_out = 1
    assert list(tmp_path.iterdir()) == []


def test_worker_processes_append_whole_lines_to_one_log(tmp_path):
    log = tmp_path / "stages.jsonl"
    code = (
        "from recpipe.tasks.common.stage_timings import stage\n"
        "for n in range(300):\n"
        "    with stage('w' + 'x' * 200, part=str(n)): pass\n"
    )
    env = os.environ | {STAGE_LOG_ENV: str(log)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records = read_stage_log(Path(log))
    assert len(records) == 1200 and len({r.pid for r in records}) == 4


def test_stage_rows_sum_calls_and_read_each_stage_against_its_floor():
    from recpipe.tasks.benchmark.stage_floors import Floor
    from recpipe.tasks.benchmark.stage_report import stage_rows
    from recpipe.tasks.common.stage_timings import StageRecord

    records = [
        StageRecord("features.events_asof", wall_s=2.0, cpu_s=3.0, peak_rss_mb=100, depth=1,
                    parent="features", part="train", rows_out=10),
        StageRecord("features.events_asof", wall_s=4.0, cpu_s=5.0, peak_rss_mb=300, depth=1,
                    parent="features", part="serve", rows_out=12),
        StageRecord("candidates", wall_s=1.0, cpu_s=2.0, parent="scoring_shard", rows_in=5),
        StageRecord("candidates", wall_s=1.0, cpu_s=4.0, parent="scoring_shard", rows_in=7),
        StageRecord("candidates", wall_s=9.0, cpu_s=9.0, parent="training_set", rows_in=1),
        StageRecord("als", wall_s=6.0, cpu_s=6.0, part="train"),
        StageRecord("als", wall_s=1.0, cpu_s=1.0, part="serve"),
    ]  # fmt: skip
    floors = {
        "scan": Floor("scan", 1.5, 2.0, 10, ""),
        "mf_topn": Floor("mf_topn", 1.0, 3.0, 12, ""),
        "als": Floor("als", 4.0, 8.0, 10, ""),
    }
    rows = {r.stage: r for r in stage_rows(records, floors)}
    scan = rows["features.events_asof"]
    assert (scan.calls, scan.wall_s, scan.peak_rss_mb, scan.rows_out) == (2, 6.0, 300, 22)
    assert scan.ratio == pytest.approx(3.0 / 1.5)  # wall per call over the floor's wall
    shard = rows["scoring_shard/candidates"]
    assert (shard.calls, shard.rows_in) == (2, 12) and shard.ratio == pytest.approx(6.0 / 3.0)
    assert rows["training_set/candidates"].ratio is None  # no floor: not the served scoring
    assert rows["als[train]"].ratio == pytest.approx(1.5) and rows["als[serve]"].ratio is None
