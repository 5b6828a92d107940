"""Shared fixtures: local-only environment, one Prefect test server, small generated shops."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from recpipe.settings import THREAD_ENVIRONMENT  # noqa: E402 - imports no Prefect / MLflow

# Keep Prefect, MLflow and GX local and quiet before any of them is imported.
for key, value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    **THREAD_ENVIRONMENT,
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_shop(tmp_path_factory) -> Path:
    """The `tiny` synthetic shop (a few thousand events), generated once per session."""
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    out = tmp_path_factory.mktemp("tiny_shop")
    synthetic_shop(out, "tiny", seed=7)
    return out


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory) -> Path:
    """The `small` synthetic shop (~60k events) for model tests."""
    from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

    out = tmp_path_factory.mktemp("small_shop")
    synthetic_shop(out, "small", seed=11)
    return out
