"""Helpers of the operations tests: free ports, an environment with no server settings, and
pages as headless Chromium shows them."""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict:
    """This environment without RECPIPE_*, PREFECT_* and MLflow tracking variables, plus
    `extra`: a command finds its servers the way a user's shell would."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECPIPE_", "PREFECT_", "MLFLOW_TRACKING"))
    }
    return env | extra


OUTPUT = Path(__file__).resolve().parent / ".output"  # screenshots of the UI tests


def page_text(url: str, screenshot: str, wait_ms: int = 20000) -> str:
    """The visible text of `url` as headless Chromium renders it (scripts run for up to
    `wait_ms` of virtual time), with a screenshot saved to tests/.output/`screenshot`."""
    OUTPUT.mkdir(exist_ok=True)
    common = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
              f"--virtual-time-budget={wait_ms}", "--window-size=1600,2400"]  # fmt: skip
    subprocess.run(
        [*common, f"--screenshot={OUTPUT / screenshot}", url],
        capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=True
    ).stdout
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def api(base: str, path: str, body: dict | None = None) -> dict | list:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="GET" if body is None else "POST",
    )
    for attempt in range(6):  # like Prefect's own client: a busy server's 503/429 is retried
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return json.loads(resp.read() or "null")
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 503) or attempt == 5:
                raise
        time.sleep(2**attempt)


def finished(base: str, run_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(base, f"/flow_runs/{run_id}")
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish")


def run_cli(*args: str, cwd: Path, timeout: int = 900, env: dict | None = None) -> str:
    """stdout of a successful `recpipe` command run as a user's shell would run it (with the
    variables in `env` exported)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "recpipe"), *args], cwd=cwd,
        env=clean_env(**(env or {})), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout
