"""`recpipe serve`: the deployments run from one process, without a work pool or a worker. With
the refresh scheduled every minute, a scheduled run publishes a new version; Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ops_helpers import api, clean_env, free_port, run_cli

from recpipe.tasks.serving.recommendation_publishing import current_version
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def test_serve_runs_the_scheduled_refresh(tmp_path):
    synthetic_shop(tmp_path / "shop", "tiny", seed=7)
    data, port = tmp_path / "data", free_port()
    run_cli("up", "--data-dir", str(data), "--prefect-port", str(port),
            "--mlflow-port", str(free_port()), cwd=tmp_path)  # fmt: skip
    serve = None
    try:
        run_cli("run", "--events", "shop/events", "--items", "shop/items.parquet",
                "--data-dir", str(data), cwd=tmp_path)  # fmt: skip
        first = current_version(data / "recommendations")
        serve = subprocess.Popen(
            [str(BIN / "recpipe"), "serve", "--data-dir", str(data), "--nightly-cron", "* * * * *"],
            cwd=tmp_path, env=clean_env(), stdout=open(tmp_path / "serve.log", "w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base, done = f"http://127.0.0.1:{port}/api", []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not done:
            runs = api(base, "/flow_runs/filter", {
                "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "limit": 50,
            })  # fmt: skip
            done = [r for r in runs if r["auto_scheduled"] and r["deployment_id"]]
            time.sleep(3)
        assert done, (tmp_path / "serve.log").read_text()[-3000:]
        assert current_version(data / "recommendations") not in (None, first)
    finally:
        if serve is not None:
            os.killpg(serve.pid, signal.SIGINT)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
        run_cli("down", "--data-dir", str(data), cwd=tmp_path)
