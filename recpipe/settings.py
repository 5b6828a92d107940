"""Where recpipe keeps things and the knobs shared by every stage.

One `Settings` object, read from `RECPIPE_*` environment variables and an optional `.env`.
Nothing here touches the disk or the environment: `local_environment()` returns the
variables the CLI sets before Prefect or MLflow are imported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from recpipe.contract import DEFAULT_EVENT_WEIGHTS
from recpipe.errors import InputError

LOG_FORMAT = "%(asctime)s %(name)s %(message)s"  # the CLI's and its worker processes' log lines

# Threads of the numeric libraries, for every process recpipe starts (CLI, pool and Dask workers,
# deployments): BLAS single-threaded (ALS and the scorers set their own thread counts), and
# OpenMP threads that sleep rather than spin while they wait. Spinning threads burn the CPU the
# other threads of a parallel region need: with 6 other busy processes on 2 cores a ranker fit
# took 93 s instead of 10 s (8.9x) and 2.3x its quiet CPU time; sleeping, 42 s (4x) and no
# extra CPU.
THREAD_ENVIRONMENT = {
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}

Runner = Literal["local", "processes", "dask"]  # where scoring shards run (flows/shard_runners)


@dataclass(frozen=True)
class StoreConfig:
    """The arguments of `tasks.common.object_store.object_store`."""

    url: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    region: str | None = None


class Settings(BaseSettings):
    """Locations and pipeline-wide defaults (environment prefix `RECPIPE_`)."""

    model_config = SettingsConfigDict(env_prefix="RECPIPE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Root of the lake, warehouse, runs and tables."
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite file in the data directory."
    )
    experiment_name: str = Field("recpipe", description="MLflow experiment (one per dataset).")
    registered_model_name: str = Field("recpipe-ranker", description="MLflow registered model.")
    event_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS),
        description="Event types accepted by ingestion and the weight of each in the interaction matrix.",
    )
    half_life_days: float | None = Field(
        None,
        gt=0,
        description="Half-life of time decay for interest; default FeatureConfig's (14 days).",
    )
    max_bad_row_share: float = Field(
        0.01, ge=0, le=1, description="Share of quarantined rows above which an ingest fails."
    )
    min_ts: datetime = Field(
        datetime(1970, 4, 1),
        description="Events before this (UTC) are quarantined as ts_before_min; the default only "
        "catches epoch seconds read as milliseconds, so logs from any year since 1970 land.",
    )
    event_map: dict[str, str] = Field(
        default_factory=dict,
        description="Source event-type values renamed before the checks (matched lower-cased "
        'and trimmed), e.g. {"transaction": "purchase", "addtocart": "cart"}; values not '
        "listed keep their name.",
    )
    runner: Runner = Field(
        "processes",
        description="Where scoring shards run: local (the flow's own process), processes (a "
        "pool of `workers` processes on this machine) or dask (a Dask cluster).",
    )
    dask_address: str | None = Field(
        None,
        description="Scheduler of an existing Dask cluster (tcp://host:8786) for the dask "
        "runner; default a LocalCluster of `workers` processes started for the run.",
    )
    object_store: str | None = Field(
        None,
        description="s3://bucket/prefix holding the lake and the published recommendation "
        "versions; the data directory is then a working copy (runs pull the lake first and push "
        "what they land or publish).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible server, e.g. http://127.0.0.1:8333."
    )
    s3_access_key_id: str | None = Field(None, description="S3 access key (default AWS_*).")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key.")
    s3_region: str | None = Field(None, description="S3 region (default AWS_REGION or us-east-1).")
    lock_wait_seconds: float = Field(
        0,
        ge=0,
        description="How long a run waits for another run holding the same data directory "
        "before it fails naming the holder (0 = fail at once).",
    )

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("at least one event type is needed")
        for name, weight in weights.items():
            if not name.strip() or name != name.strip():
                raise ValueError(f"event type {name!r} is empty or has surrounding whitespace")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {name!r} must be a finite number >= 0, not {weight}")
        return weights

    @field_validator("event_map")
    @classmethod
    def _event_map(cls, mapping: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        mapping = {key.strip().lower(): value.strip().lower() for key, value in mapping.items()}
        accepted = info.data.get("event_weights") or {}
        unknown = sorted({v for v in mapping.values() if v not in accepted})
        if unknown or "" in mapping:
            raise ValueError(
                f"renames to {unknown}, not accepted event types ({', '.join(accepted)})"
                if unknown
                else "an empty source value cannot be renamed"
            )
        return mapping

    @property
    def event_types(self) -> list[str]:
        return list(self.event_weights)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        return self.data_path / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.data_path / "models"

    @property
    def recommendations_dir(self) -> Path:
        return self.data_path / "recommendations"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.data_path / 'mlflow.db'}"

    def store_config(self) -> StoreConfig:
        """Where the object store is and how to reach it (`url` None: no store)."""
        secret = self.s3_secret_access_key
        return StoreConfig(
            url=self.object_store,
            endpoint_url=self.s3_endpoint_url,
            access_key_id=self.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            region=self.s3_region,
        )

    def local_environment(self) -> dict[str, str]:
        """Environment that keeps Prefect and MLflow local, quiet and under the data directory."""
        return {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            **THREAD_ENVIRONMENT,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "PREFECT_HOME": str(self.data_path / ".prefect"),
            "PREFECT_LOGGING_LEVEL": "WARNING",
        } | self.store_environment()

    def store_environment(self) -> dict[str, str]:
        """With an object store, MLflow's S3 artifact client (boto3) reaches the same store."""
        if not self.object_store:
            return {}
        env = {"AWS_DEFAULT_REGION": self.s3_region or "us-east-1"}
        if self.s3_endpoint_url:
            env["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.s3_access_key_id:
            env["AWS_ACCESS_KEY_ID"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            env["AWS_SECRET_ACCESS_KEY"] = self.s3_secret_access_key.get_secret_value()
        return env

    @property
    def artifact_location(self) -> str | None:
        """Where new MLflow experiments keep artifacts: `<object store>/mlflow-artifacts`, or
        None (MLflow's default for the tracking store: `artifacts/` beside a SQLite file)."""
        return f"{self.object_store.rstrip('/')}/mlflow-artifacts" if self.object_store else None


_EXAMPLES = {
    "event_weights": """'{"view": 1, "cart": 4, "purchase": 8}'""",
    "event_map": """'{"transaction": "purchase", "addtocart": "cart"}'""",
}


def load_settings(**values: object) -> Settings:
    """`Settings(**values)`, with a bad value reported as one `InputError` naming the variable
    (`RECPIPE_...`, from the environment or `.env`) and what would be valid."""
    try:
        return Settings(**values)
    except SettingsError as exc:  # a value that is not even JSON
        found = re.search(r'field "(\w+)"', str(exc))
        field = found.group(1) if found else ""
        cause = exc.__cause__
        raise InputError(
            f"RECPIPE_{field.upper()} (environment or .env) cannot be parsed"
            + (f" ({cause})" if cause else "")
            + (f"; expected JSON like {_EXAMPLES[field]}" if field in _EXAMPLES else "")
        ) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        where = f"--{field.replace('_', '-')}" if field in values else f"RECPIPE_{field.upper()}"
        detail = ".".join(str(p) for p in err["loc"][1:])
        raise InputError(
            f"{where}{' [' + detail + ']' if detail else ''}: {err['msg']} "
            f"(got {err.get('input')!r})"
            + (f"; expected e.g. {_EXAMPLES[field]}" if field in _EXAMPLES else "")
        ) from None
