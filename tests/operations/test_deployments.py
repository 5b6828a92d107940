"""The operations path as a user walks it, with real servers and a real worker:

`recpipe up` (a Prefect server and an MLflow server) -> `recpipe deploy` -> `prefect worker
start` -> the `ingest` deployment lands the inbox -> a `retrain` started with non-default
parameters exactly as the UI's form does (`POST /api/deployments/{id}/create_flow_run`) -> the
MLflow run records them and the model becomes champion -> `nightly-refresh` started by hand and
then by its (per-minute) cron schedule publishes two new versions -> `recpipe down` stops
everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ops_helpers import api, clean_env, finished, free_port, page_text, run_cli

from recpipe.tasks.serving.recommendation_publishing import current_version
from recpipe.tasks.synthetic.synthetic_shop import synthetic_shop

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    shop = root / "shop"
    synthetic_shop(shop, "tiny", seed=7)
    data = root / "data"
    prefect_port, mlflow_port = free_port(), free_port()
    run_cli(
        "up", "--data-dir", str(data), "--prefect-port", str(prefect_port),
        "--mlflow-port", str(mlflow_port), cwd=root,
    )  # fmt: skip
    base = f"http://127.0.0.1:{prefect_port}/api"
    worker = None
    try:
        deploy = run_cli(
            "deploy", "--data-dir", str(data), "--inbox", str(shop / "events"),
            "--nightly-cron", "* * * * *", cwd=root,
        )  # fmt: skip
        ids = dict(line.split()[1:3] for line in deploy.splitlines() if line.startswith("deploy"))
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "recpipe"],
            cwd=root, env=clean_env(PREFECT_API_URL=base), stdout=open(root / "worker.log", "w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        yield {"root": root, "data": data, "base": base, "ids": ids,
               "mlflow": f"http://127.0.0.1:{mlflow_port}"}  # fmt: skip
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        print(run_cli("down", "--data-dir", str(data), cwd=root))


def test_deployments_carry_the_data_directory_and_run_from_the_package(deployed):
    assert set(deployed["ids"]) == {"nightly-refresh", "weekly-retrain", "retrain", "ingest"}
    for name, deployment_id in deployed["ids"].items():
        dep = api(deployed["base"], f"/deployments/{deployment_id}")
        assert dep["entrypoint"].startswith("recpipe.flows."), dep["entrypoint"]
        assert dep["parameters"]["params"]["data_dir"] == str(deployed["data"])
        assert dep["job_variables"]["env"]["PREFECT_LOGGING_EXTRA_LOGGERS"] == "recpipe"
        schema = dep["parameter_openapi_schema"]
        assert "params" in schema["properties"], name


def test_ingest_retrain_from_the_form_then_refresh_by_hand_and_by_schedule(deployed):
    base, ids, data = deployed["base"], deployed["ids"], deployed["data"]
    ingest = api(base, f"/deployments/{ids['ingest']}/create_flow_run", {})
    assert finished(base, ingest["id"])["state_type"] == "COMPLETED"

    form = {"params": {"data_dir": str(data), "als": {"factors": 16}, "seed": 3}}
    retrain = api(base, f"/deployments/{ids['retrain']}/create_flow_run", {"parameters": form})
    run = finished(base, retrain["id"])
    assert run["state_type"] == "COMPLETED", (deployed["root"] / "worker.log").read_text()[-4000:]

    client = MlflowClient(tracking_uri=deployed["mlflow"])
    (mlflow_run,) = client.search_runs(
        [client.get_experiment_by_name("recpipe").experiment_id], max_results=5
    )
    assert mlflow_run.data.params["als.factors"] == "16"
    assert mlflow_run.data.params["seed"] == "3"
    assert mlflow_run.data.params["data_dir"] == str(data)
    champion = client.get_model_version_by_alias("recpipe-ranker", "champion")
    assert champion.run_id == mlflow_run.info.run_id  # the first model is promoted

    refresh = api(base, f"/deployments/{ids['nightly-refresh']}/create_flow_run", {})
    done_by_hand = finished(base, refresh["id"])
    assert done_by_hand["state_type"] == "COMPLETED"
    by_hand = current_version(data / "recommendations")
    assert by_hand is not None

    deadline = time.monotonic() + 240  # the per-minute schedule's next run
    scheduled_done = []
    while time.monotonic() < deadline and not scheduled_done:
        runs = api(base, "/flow_runs/filter", {
            "deployments": {"id": {"any_": [ids["nightly-refresh"]]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}, "limit": 20,
        })  # fmt: skip
        scheduled_done = [  # a scheduled run that started after the one by hand ended
            r for r in runs if r["auto_scheduled"] and r["start_time"] > done_by_hand["end_time"]
        ]
        time.sleep(3)
    assert scheduled_done, "no scheduled nightly-refresh run completed"
    assert current_version(data / "recommendations") not in (None, by_hand)

    log = (deployed["root"] / "worker.log").read_text()
    assert "recpipe.tasks.serving.recommendation_publishing" in log  # the project's own lines
    assert "HTTP Request:" not in log  # no per-request lines


def test_the_uis_show_the_deployments_the_form_and_two_compared_runs(deployed):
    """Headless Chromium on the real pages (content, not status codes); screenshots in
    tests/.output/."""
    base, ids, data = deployed["base"], deployed["ids"], deployed["data"]
    ui = base.removesuffix("/api")
    listing = page_text(f"{ui}/deployments", "prefect-deployments.png")
    for name in ("nightly-refresh", "weekly-retrain", "retrain", "ingest"):
        assert name in listing, listing[:2000]
    assert "At 03:00 AM, only on Sunday" in listing  # the weekly schedule, as people read it

    form = page_text(f"{ui}/deployments/deployment/{ids['retrain']}/run", "retrain-form.png")
    for label in ("Data Dir", "Factors", "Latent factors", "N Estimators", "Force Promote"):
        assert label in form, (label, form[:3000])

    second = {"params": {"data_dir": str(data), "als": {"factors": 8}}}
    run = api(base, f"/deployments/{ids['retrain']}/create_flow_run", {"parameters": second})
    assert finished(base, run["id"])["state_type"] == "COMPLETED"
    client = MlflowClient(tracking_uri=deployed["mlflow"])
    experiment = client.get_experiment_by_name("recpipe")
    assert "ndcg_at_10" in experiment.tags["mlflow.note.content"]
    runs = client.search_runs([experiment.experiment_id], max_results=10)
    assert len(runs) == 2 and all(r.info.run_name.startswith("train ") for r in runs)
    ids_json = ",".join(f'"{r.info.run_id}"' for r in runs)
    compare = page_text(
        f"{deployed['mlflow']}/#/compare-runs?runs=[{ids_json}]"
        f'&experiments=["{experiment.experiment_id}"]',
        "mlflow-compare.png",
    )
    for r in runs:
        assert r.info.run_name in compare
    assert "ndcg_at_10" in compare and "als.factors" in compare


def test_prefect_yaml_renders_the_data_directory_when_deployed(deployed):
    """The declarative route (`prefect deploy` of infra/prefect.yaml) gives the same deployments,
    with `{{ $RECPIPE_DATA_DIR }}` rendered. Last in this module: it replaces the schedules."""
    root, base, data = deployed["root"], deployed["base"], deployed["data"]
    out = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
         str(Path(__file__).resolve().parents[2] / "infra" / "prefect.yaml")],
        cwd=root, env=clean_env(PREFECT_API_URL=base, RECPIPE_DATA_DIR=str(data)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    deployments = api(base, "/deployments/filter", {})
    by_name = {d["name"]: d for d in deployments}
    assert {"nightly-refresh", "weekly-retrain", "retrain", "ingest"} <= set(by_name)
    for d in by_name.values():
        assert d["parameters"]["params"]["data_dir"] == str(data), d["parameters"]
        assert d["entrypoint"].startswith("recpipe.flows.")
    assert by_name["ingest"]["parameters"]["params"]["events"] == f"{data}/inbox"
