"""The production configuration's databases, for real: `recpipe up --backend postgresql://...`
runs the Prefect server and the MLflow tracking server on a local PostgreSQL (Debian's package,
installed and started by infra/test-services.sh), and `recpipe run` (ingest, train, recommend)
records its flow runs, its MLflow run and its registered model there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg2
import pytest
from ops_helpers import free_port, run_cli

from recpipe.tasks.serving.recommendation_publishing import current_version
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "infra" / "test-services.sh"


@pytest.fixture(scope="module")
def postgres_url():
    if os.getuid() == 0:
        subprocess.run([str(SERVICES), "install"], check=True, timeout=900)
    out = subprocess.run(
        [str(SERVICES), "start-postgres"], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    url = out[0]
    for db in ("recpipe_test_prefect", "recpipe_test_mlflow"):  # a clean slate each session
        con = psycopg2.connect(url)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"drop database if exists {db} with (force)")
        con.close()
    yield url
    if "started" in out:
        subprocess.run([str(SERVICES), "stop-postgres"], check=True, timeout=120)


def rows(url: str, db: str, query: str) -> list[tuple]:
    con = psycopg2.connect(url.rsplit("/", 1)[0] + "/" + db)
    try:
        with con.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        con.close()


def test_run_reports_to_servers_backed_by_postgresql(postgres_url, tmp_path):
    synthetic_shop(tmp_path / "shop", "tiny", seed=7)
    data = tmp_path / "data"
    up = run_cli(
        "up", "--data-dir", str(data), "--backend", postgres_url,
        "--prefect-port", str(free_port()), "--mlflow-port", str(free_port()), cwd=tmp_path,
    )  # fmt: skip
    try:
        assert "export PREFECT_API_URL=http://127.0.0.1:" in up
        run_cli(
            "run", "--events", "shop/events", "--items", "shop/items.parquet",
            "--users", "shop/users.parquet", "--data-dir", str(data), cwd=tmp_path,
        )  # fmt: skip
    finally:
        assert "stopped: prefect, mlflow" in run_cli("down", "--data-dir", str(data), cwd=tmp_path)

    assert current_version(data / "recommendations") is not None
    assert not (data / "mlflow.db").exists()  # the tracking store was PostgreSQL
    flows = dict(
        rows(
            postgres_url,
            "recpipe_test_prefect",
            "select f.name, count(*) from flow_run r join flow f on f.id = r.flow_id "
            "where r.state_type = 'COMPLETED' group by f.name",
        )
    )
    assert {"run", "ingest", "train", "recommend"} <= set(flows), flows
    runs = rows(postgres_url, "recpipe_test_mlflow", "select name, status from runs")
    assert len(runs) == 1 and runs[0][0].startswith("train ") and runs[0][1] == "FINISHED"
    aliases = rows(
        postgres_url, "recpipe_test_mlflow", "select alias from registered_model_aliases"
    )
    assert ("champion",) in aliases
