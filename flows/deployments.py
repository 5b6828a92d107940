"""The deployments `recpipe deploy` registers and `recpipe serve` runs, built from the installed
package (module entrypoints: a worker needs `pip install recpipe`, not a checkout).

Each deployment's parameters carry the data directory, so a run never depends on the worker's
environment; the job variables give the run the project's loggers and the MLflow server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect.deployments.runner import EntrypointType, RunnerDeployment

from recpipe.flows.ingest import ingest_flow
from recpipe.flows.recommend import recommend_flow
from recpipe.flows.train import train_flow
from recpipe.settings import THREAD_ENVIRONMENT

NIGHTLY_CRON = "30 2 * * *"  # UTC
WEEKLY_CRON = "0 3 * * 0"  # Sunday, UTC


@dataclass(frozen=True)
class DeploymentPlan:
    """What `deploy` / `serve` set up for one data directory."""

    data_dir: Path
    tracking_uri: str
    inbox: Path
    nightly_cron: str = NIGHTLY_CRON
    weekly_cron: str = WEEKLY_CRON
    # a scheduled run that finds another run on the data directory waits for it (a refresh
    # while a retrain runs) instead of failing; the lock is still one writer at a time
    lock_wait_seconds: float = 4 * 3600


def run_environment(plan: DeploymentPlan) -> dict[str, str]:
    """Environment of every deployment run: the project's log lines reach the Prefect UI, no
    progress bars or per-request lines, MLflow where `deploy` found it, one BLAS thread, and
    waiting (not failing) for another run on the data directory."""
    return {
        "PREFECT_LOGGING_EXTRA_LOGGERS": "recpipe",
        "RECPIPE_LOCK_WAIT_SECONDS": str(plan.lock_wait_seconds),
        "PREFECT_LOGGING_LEVEL": "INFO",
        "RECPIPE_MLFLOW_TRACKING_URI": plan.tracking_uri,
        "MLFLOW_TRACKING_URI": plan.tracking_uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "False",
        "DO_NOT_TRACK": "true",
        **THREAD_ENVIRONMENT,
        "TQDM_DISABLE": "1",
    }


def recpipe_deployments(plan: DeploymentPlan, in_pool: bool = True) -> list[RunnerDeployment]:
    """nightly-refresh (recommend with the champion, daily), weekly-retrain (train with the
    promotion gate, weekly), retrain (no schedule: started by a person from the UI form) and
    ingest (new files from the inbox directory). `in_pool`: for a work pool, whose runs get
    `run_environment` as job variables (served deployments inherit the serving process's)."""
    data = {"data_dir": str(plan.data_dir)}
    common = {
        "entrypoint_type": EntrypointType.MODULE_PATH,
        "job_variables": {"env": run_environment(plan)} if in_pool else None,
        "tags": ["recpipe"],
    }
    return [
        recommend_flow.to_deployment(
            "nightly-refresh",
            cron=plan.nightly_cron,
            parameters={"params": data | {"model_version": "champion"}},
            description="Rebuild features as of now and publish fresh recommendations with the "
            "champion model.",
            **common,
        ),
        train_flow.to_deployment(
            "weekly-retrain",
            cron=plan.weekly_cron,
            parameters={"params": data},
            description="Train, evaluate against the baselines, register; promote only if it "
            "beats the champion.",
            **common,
        ),
        train_flow.to_deployment(
            "retrain",
            parameters={"params": data},
            description="A retrain started by hand (Run > Custom run shows the parameters as a "
            "form); promoted only if it beats the champion unless force_promote is set.",
            **common,
        ),
        ingest_flow.to_deployment(
            "ingest",
            parameters={"params": data | {"events": str(plan.inbox)}},
            description="Validate the files in the inbox and land the good rows in the lake.",
            **common,
        ),
    ]


def applied_deployments(plan: DeploymentPlan, pool: str) -> dict[str, str]:
    """Create the `process` work pool if missing and create or update the deployments in it;
    {deployment name: id}."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            pass
    return {d.name: str(d.apply(work_pool_name=pool)) for d in recpipe_deployments(plan)}
