"""MLflow tracking and model registry for the ranker (MLflow 3.17, aliases instead of stages).

Every function takes the tracking URI explicitly and works through an
``MlflowClient(tracking_uri)``. The only call that needs MLflow's *global* tracking/registry
URI is ``mlflow.lightgbm.log_model`` (it resolves the store and registers the model through
the fluent API); that call runs inside :func:`_mlflow_uris`, which sets both URIs and
restores the previous values (and the ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``
environment variables) afterwards, under a lock.

Artifacts: for a ``sqlite:///...`` tracking URI the experiment is created with
``artifact_location`` = ``file://<folder of the sqlite file>/artifacts`` so that nothing is
written into the current directory (MLflow's default for SQL stores is ``./mlartifacts``).
Layout of one run:

* ``reports/``            -- the bundle's PNGs, report.md, validation json ...
* ``mf/<file>.npz``       -- the matrix-factorisation factors (opaque here)
* ``feature_names.json``  -- ``{"feature_names": [...]}``
* the LightGBM booster is a *logged model* (MLflow 3: stored under
  ``<artifact_location>/models/<model_id>/artifacts``) registered as ``model_name``.
* a run that could not train a ranker (too little data) serves its best baseline instead: it
  logs ``baseline.json`` (``{"baseline": name, "reason": ...}``) and registers a version of
  ``model_name`` whose source is that file, tagged ``recpipe.model_kind=baseline`` (run and
  version) with ``recpipe.baseline`` and ``recpipe.fallback_reason``. The promotion gate never
  lets such a version replace a champion that is a trained ranker.

Promotion uses the aliases ``champion`` and ``challenger``; decisions are recorded as
``promotion.*`` tags on the model version and on its run.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recpipe.errors import ModelLookupError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ChampionInfo",
    "LoadedModel",
    "ModelLookupError",
    "PromotionDecision",
    "RegisteredRun",
    "TrainedBundle",
    "champion_info",
    "default_artifact_location",
    "ensure_experiment",
    "flatten_params",
    "load_model_version",
    "log_training_run",
    "promotion_gate",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT_NAME = "model"
FEATURE_NAMES_FILE = "feature_names.json"
REPORTS_DIR = "reports"
MF_DIR = "mf"
MF_TAG = "recpipe.mf_artifact"
BASELINE_FILE = "baseline.json"
KIND_TAG = "recpipe.model_kind"  # "ranker" or "baseline", on the run and the model version
BASELINE_TAG = "recpipe.baseline"
REASON_TAG = "recpipe.fallback_reason"

# MLflow 3.17 limits (mlflow.utils.validation); used only if the import ever fails.
_FALLBACK_MAX_PARAM_VAL = 6000
_FALLBACK_MAX_TAG_VAL = 8000
_FALLBACK_MAX_KEY = 250

_GLOBAL_URI_LOCK = threading.RLock()


# --------------------------------------------------------------------------- dataclasses


@dataclass
class TrainedBundle:
    """What one training produced, already on local disk."""

    booster_path: Path | None  # LightGBM native model file; None for a baseline fallback
    mf_path: Path  # .npz with user/item factors and id arrays (logged as-is)
    feature_names: list[str]
    params: dict[str, Any]  # all configuration, flat (nested dicts are flattened with '.')
    metrics: dict[str, float]
    tags: dict[str, str]  # data_fingerprint, as_of, eval_window, git_commit ...
    artifacts: list[Path] = field(default_factory=list)  # logged under "reports/"
    baseline: str | None = None  # served instead of a ranker (no booster), with its reason
    fallback_reason: str = ""


@dataclass
class PromotionDecision:
    version: str
    promoted: bool
    alias: str  # "champion" or "challenger"
    candidate_metric: float
    champion_metric: float | None
    champion_version: str | None
    reason: str


@dataclass
class RegisteredRun:
    run_id: str
    experiment_id: str
    model_version: str
    decision: PromotionDecision


@dataclass
class ChampionInfo:
    version: str
    run_id: str
    metrics: dict[str, float]
    tags: dict[str, str]  # run tags without MLflow's own "mlflow.*" tags
    params: dict[str, str]
    version_tags: dict[str, str] = field(default_factory=dict)  # tags on the model version


@dataclass
class LoadedModel:
    version: str
    run_id: str
    booster: Any  # lightgbm.Booster; None for a baseline version
    mf_path: Path  # downloaded copy of the MF npz
    feature_names: list[str]
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]
    model_dir: Path | None = None  # downloaded MLflow model folder (MLmodel, model.lgb ...)
    version_tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    baseline: str | None = None  # the baseline a fallback version serves


# --------------------------------------------------------------------------- helpers


def _limits() -> tuple[int, int, int]:
    try:
        from mlflow.utils.validation import (
            MAX_ENTITY_KEY_LENGTH,
            MAX_PARAM_VAL_LENGTH,
            MAX_TAG_VAL_LENGTH,
        )

        return MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH, MAX_ENTITY_KEY_LENGTH
    except ImportError:  # pragma: no cover - defensive
        return _FALLBACK_MAX_PARAM_VAL, _FALLBACK_MAX_TAG_VAL, _FALLBACK_MAX_KEY


_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-./ :]")


def _clean_key(key: Any, max_len: int) -> str:
    """MLflow keys allow alphanumerics, '_', '-', '.', ' ', '/', ':'; others become '_'."""
    cleaned = _BAD_KEY_CHARS.sub("_", str(key)).strip() or "_"
    return cleaned[:max_len]


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    suffix = "...[truncated]"
    return text[: limit - len(suffix)] + suffix


def flatten_params(params: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"als": {"factors": 64}}`` -> ``{"als.factors": 64}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, full, sep))
        else:
            flat[full] = value
    return flat


def default_artifact_location(tracking_uri: str) -> str | None:
    """``file://`` URI of ``artifacts/`` next to the sqlite file, or None for other stores."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    raw = tracking_uri[len(prefix) :].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    db = Path(raw)
    if not db.is_absolute():
        db = Path.cwd() / db
    return (db.resolve().parent / "artifacts").as_uri()


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def _mlflow_uris(tracking_uri: str) -> Iterator[None]:
    """Temporarily point MLflow's global tracking and registry URIs at `tracking_uri`."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _GLOBAL_URI_LOCK:
        saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
        saved_registry = getattr(registry_utils, "_registry_uri", None)
        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)  # None resets MLflow's internal state
            registry_utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    # A missing alias is reported as INVALID_PARAMETER_VALUE ("alias ... not found") in 3.17.
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND") or (
        "not found" in str(exc).lower()
    )


EXPERIMENT_NOTE = (
    "recpipe ranker trainings: one run per training, named `train <date> as_of <cutoff>`. "
    "Compare runs on `ndcg_at_10` (the promotion metric, on the eval window) against the "
    "`baseline.*` metrics; `lift.ndcg_at_10_over_best_baseline` is the margin. Params hold the "
    "whole configuration (`als.*`, `ranker.*`, `candidates.*`); the registered model "
    "`recpipe-ranker` carries the `champion` alias of the version in production."
)


def ensure_experiment(
    tracking_uri: str, experiment: str, artifact_location: str | None = None
) -> str:
    """Id of `experiment`, created (its artifacts at `artifact_location`, default a sibling
    ``artifacts/`` folder of a SQLite store) or restored if needed. An existing experiment keeps
    the artifact location it was created with (MLflow cannot move it)."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            experiment_id = client.create_experiment(
                experiment,
                artifact_location=artifact_location or default_artifact_location(tracking_uri),
            )
            client.set_experiment_tag(experiment_id, "mlflow.note.content", EXPERIMENT_NOTE)
            return experiment_id
        except MlflowException as exc:  # created concurrently by someone else
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise exc
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


# --------------------------------------------------------------------------- logging


def log_training_run(
    bundle: TrainedBundle,
    tracking_uri: str,
    experiment: str,
    model_name: str,
    run_name: str | None = None,
    started_at: _dt.datetime | None = None,
    artifact_location: str | None = None,
) -> tuple[str, str]:
    """Log one training as an MLflow run and register its booster; returns (run_id, version).
    `started_at` (UTC) is when the training began, so the run's duration is the training's.

    Params are flattened with '.', stringified and truncated to MLflow's limit (6000 chars in
    3.x, not 500 as in 1.x). Non-numeric metrics are rejected; None metrics are skipped.
    """
    import lightgbm as lgb
    from mlflow.entities import Metric, Param

    if (bundle.booster_path is None) == (bundle.baseline is None):
        raise ValueError("a bundle holds either a booster or a baseline name, not both or none")
    mf_path = Path(bundle.mf_path)
    artifacts = [Path(p) for p in bundle.artifacts]
    model_files = [Path(bundle.booster_path)] if bundle.booster_path is not None else []
    for p in (*model_files, mf_path, *artifacts):
        if not p.exists():
            raise FileNotFoundError(f"bundle file missing: {p}")

    feature_names = [str(f) for f in bundle.feature_names]
    booster = None
    if bundle.booster_path is not None:
        booster = lgb.Booster(model_file=str(bundle.booster_path))
        if booster.num_feature() != len(feature_names):
            raise ValueError(
                f"booster has {booster.num_feature()} features but the bundle names "
                f"{len(feature_names)}"
            )

    max_param, max_tag, max_key = _limits()
    param_values = {  # a dict, so keys that collide after cleaning are logged once
        _clean_key(k, max_key): _truncate(_stringify(v), max_param)
        for k, v in flatten_params(bundle.params).items()
    }
    params = [Param(k, v) for k, v in param_values.items()]
    now_ms = int(_dt.datetime.now(_dt.UTC).timestamp() * 1000)
    metric_values: dict[str, float] = {}
    for key, value in bundle.metrics.items():
        if value is None:
            continue
        try:
            metric_values[_clean_key(key, max_key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metric {key!r} is not numeric: {value!r}") from exc
    metrics = [Metric(k, v, now_ms, 0) for k, v in metric_values.items()]
    tags = {
        _clean_key(k, max_key): _truncate(_stringify(v), max_tag) for k, v in bundle.tags.items()
    }
    tags.update(
        {
            MF_TAG: f"{MF_DIR}/{mf_path.name}",
            "recpipe.model_name": model_name,
            "recpipe.feature_count": str(len(feature_names)),
            KIND_TAG: "ranker" if booster is not None else "baseline",
        }
        | (
            {BASELINE_TAG: bundle.baseline, REASON_TAG: _truncate(bundle.fallback_reason, max_tag)}
            if bundle.baseline
            else {}
        )
    )

    client = _client(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment, artifact_location)
    start_ms = int(started_at.replace(tzinfo=_dt.UTC).timestamp() * 1000) if started_at else None
    run = client.create_run(experiment_id, start_time=start_ms, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    try:
        client.log_batch(run_id, metrics=metrics, params=params)
        for path in artifacts:
            if path.is_dir():
                client.log_artifacts(run_id, str(path), f"{REPORTS_DIR}/{path.name}")
            else:
                client.log_artifact(run_id, str(path), REPORTS_DIR)
        client.log_artifact(run_id, str(mf_path), MF_DIR)
        client.log_dict(run_id, {"feature_names": feature_names}, FEATURE_NAMES_FILE)

        if booster is not None:
            model_version = _log_booster(
                booster,
                feature_names,
                tracking_uri,
                experiment_id,
                run_id,
                model_name,
                params=param_values,
            )
        else:
            model_version = _register_baseline(client, run_id, model_name, bundle)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id, model_version


def _log_booster(
    booster,
    feature_names: list[str],
    tracking_uri: str,
    experiment_id: str,
    run_id: str,
    model_name: str,
    params: dict[str, str],
) -> str:
    import lightgbm as lgb
    import mlflow.lightgbm
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in feature_names]),
        outputs=Schema([ColSpec("double")]),
    )
    with _mlflow_uris(tracking_uri):
        # Create the LoggedModel explicitly in the run's experiment: with `run_id=` but no
        # active run, log_model() would file it under the *default* experiment 0, whose
        # artifact location is relative to the current directory (./mlruns/0/models/...).
        logged = mlflow.initialize_logged_model(
            name=MODEL_ARTIFACT_NAME,
            source_run_id=run_id,
            params=params,
            model_type="lightgbm-lambdarank",
            experiment_id=experiment_id,
        )
        info = mlflow.lightgbm.log_model(
            booster,
            name=MODEL_ARTIFACT_NAME,
            registered_model_name=model_name,
            signature=signature,
            # Explicit requirements: otherwise MLflow infers them by loading the model in a
            # subprocess, which costs seconds per call.
            pip_requirements=[f"lightgbm=={lgb.__version__}"],
            metadata={"feature_names": feature_names},
            run_id=run_id,
            model_id=logged.model_id,
        )
    version = info.registered_model_version
    if version is None:  # pragma: no cover - registration is synchronous for sqlite
        raise RuntimeError(f"model {model_name!r} was logged but not registered")
    return str(version)


def _register_baseline(client, run_id: str, model_name: str, bundle: TrainedBundle) -> str:
    """Register a version of `model_name` that serves `bundle.baseline` (no booster): its source
    is the run's baseline.json; the version carries the kind, baseline and reason tags."""
    from mlflow.exceptions import MlflowException

    client.log_dict(
        run_id, {"baseline": bundle.baseline, "reason": bundle.fallback_reason}, BASELINE_FILE
    )
    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    run = client.get_run(run_id)
    mv = client.create_model_version(
        model_name,
        source=f"{run.info.artifact_uri}/{BASELINE_FILE}",
        run_id=run_id,
        tags={
            KIND_TAG: "baseline",
            BASELINE_TAG: str(bundle.baseline),
            REASON_TAG: _truncate(bundle.fallback_reason, 5000),
        },
    )
    return str(mv.version)


# --------------------------------------------------------------------------- promotion


def _alias_version(client, model_name: str, alias: str):
    """The ModelVersion carrying `alias`, or None if the model or the alias is missing."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise


def _f(x: float | None) -> str:
    return "none" if x is None else f"{x:.4f}"


def promotion_gate(
    tracking_uri: str,
    model_name: str,
    version: str,
    metric_name: str,
    candidate_metric: float,
    champion_metric: float | None,
    tolerance: float = 0.0,
    force: bool = False,
) -> PromotionDecision:
    """Set alias ``champion`` (or ``challenger``) on `version` and record why.

    Promoted when there is no champion yet, when ``candidate >= champion - tolerance``, or
    when `force`. If a champion exists but `champion_metric` is None, the champion run's
    `metric_name` is used; if that is missing too the candidate is promoted. A NaN
    candidate never passes the comparison. A baseline fallback never replaces a champion
    that is a trained ranker (unless forced). The decision is written as ``promotion.*``
    tags on the model version and on its run.
    """
    from mlflow.exceptions import MlflowException

    version = str(version)
    client = _client(tracking_uri)
    try:
        mv = client.get_model_version(model_name, version)
    except MlflowException as exc:
        if _is_missing(exc):
            raise ModelLookupError(
                f"model {model_name!r} has no version {version} in {tracking_uri}"
            ) from exc
        raise

    candidate = float(candidate_metric)
    current = _alias_version(client, model_name, CHAMPION)
    champion_version = str(current.version) if current is not None else None
    if current is not None and champion_metric is None and current.run_id:
        champion_metric = client.get_run(current.run_id).data.metrics.get(metric_name)
    if champion_metric is not None:
        champion_metric = float(champion_metric)

    cmp = (
        f"{metric_name} {_f(candidate)} {{op}} champion v{champion_version} "
        f"{_f(champion_metric)} - tolerance {tolerance:.4f}"
    )
    baseline_over_ranker = (
        current is not None
        and (mv.tags or {}).get(KIND_TAG) == "baseline"
        and (current.tags or {}).get(KIND_TAG) != "baseline"
    )
    if current is None:
        promoted = True
        reason = (
            f"no champion for {model_name!r} yet: v{version} ({metric_name} "
            f"{_f(candidate)}) promoted to champion"
        )
    elif baseline_over_ranker and champion_version != version:
        promoted = bool(force)
        what = (
            f"v{version} is a baseline fallback ({(mv.tags or {}).get(BASELINE_TAG)}, no "
            f"ranker trained) and champion v{champion_version} is a trained ranker"
        )
        reason = (
            f"forced: {what}, promoted to champion anyway"
            if force
            else f"{what}: kept as challenger"
        )
    elif champion_version == version:
        promoted = True
        reason = f"v{version} is already the champion ({metric_name} {_f(candidate)})"
    elif champion_metric is None:
        promoted = True
        reason = (
            f"champion v{champion_version} has no {metric_name}: v{version} "
            f"({_f(candidate)}) promoted to champion"
        )
    else:
        passes = candidate >= champion_metric - tolerance  # False for NaN
        if passes:
            promoted = True
            reason = cmp.format(op=">=") + ": promoted to champion"
        elif force:
            promoted = True
            reason = "forced: " + cmp.format(op="<") + ", promoted to champion anyway"
        else:
            promoted = False
            reason = cmp.format(op="<") + ": kept as challenger"

    alias = CHAMPION if promoted else CHALLENGER
    client.set_registered_model_alias(model_name, alias, version)
    if promoted and CHALLENGER in (mv.aliases or []):
        client.delete_registered_model_alias(model_name, CHALLENGER)

    decided_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    record = {
        "promotion.promoted": "true" if promoted else "false",
        "promotion.alias": alias,
        "promotion.reason": reason,
        "promotion.metric": metric_name,
        "promotion.candidate_metric": repr(candidate),
        "promotion.champion_metric": "" if champion_metric is None else repr(champion_metric),
        "promotion.champion_version": champion_version or "",
        "promotion.tolerance": repr(float(tolerance)),
        "promotion.forced": "true" if force else "false",
        "promotion.decided_at": decided_at,
    }
    for key, value in record.items():
        client.set_model_version_tag(model_name, version, key, value)
        if mv.run_id:
            client.set_tag(mv.run_id, key, value)

    return PromotionDecision(
        version=version,
        promoted=promoted,
        alias=alias,
        candidate_metric=candidate,
        champion_metric=champion_metric,
        champion_version=champion_version,
        reason=reason,
    )


# --------------------------------------------------------------------------- reading


def champion_info(tracking_uri: str, model_name: str) -> ChampionInfo | None:
    """The current champion's version, run metrics/params/tags; None without a champion."""
    client = _client(tracking_uri)
    mv = _alias_version(client, model_name, CHAMPION)
    if mv is None:
        return None
    run = client.get_run(mv.run_id)
    return ChampionInfo(
        version=str(mv.version),
        run_id=mv.run_id,
        metrics=dict(run.data.metrics),
        tags=_user_tags(run.data.tags),
        params=dict(run.data.params),
        version_tags=dict(mv.tags or {}),
    )


def _resolve_version(client, tracking_uri: str, model_name: str, version_or_alias: str):
    from mlflow.exceptions import MlflowException

    ref = str(version_or_alias).strip()
    if re.fullmatch(r"[vV]\d+", ref):
        ref = ref[1:]
    try:
        if ref.isdigit():
            return client.get_model_version(model_name, ref)
        return client.get_model_version_by_alias(model_name, ref)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        what = f"version {ref}" if ref.isdigit() else f"alias {ref!r}"
        try:
            client.get_registered_model(model_name)
        except MlflowException:
            raise ModelLookupError(f"no registered model {model_name!r} in {tracking_uri}") from exc
        raise ModelLookupError(
            f"registered model {model_name!r} has no {what} in {tracking_uri}"
        ) from exc


def load_model_version(
    tracking_uri: str, model_name: str, version_or_alias: str, dest: Path
) -> LoadedModel:
    """Download and load a registered version ("champion", "challenger" or "3").

    Files land in ``dest/v<version>/``: ``model/`` (MLflow model, ``model.lgb``),
    ``mf/<file>.npz`` and ``feature_names.json``.
    """
    import mlflow.artifacts
    import mlflow.lightgbm

    client = _client(tracking_uri)
    mv = _resolve_version(client, tracking_uri, model_name, version_or_alias)
    version = str(mv.version)
    run = client.get_run(mv.run_id)
    target = Path(dest) / f"v{version}"
    model_dir = target / MODEL_ARTIFACT_NAME
    model_dir.mkdir(parents=True, exist_ok=True)

    vtags = dict(mv.tags or {})
    baseline = vtags.get(BASELINE_TAG) if vtags.get(KIND_TAG) == "baseline" else None
    if baseline:  # a baseline fallback: nothing to load but its name
        booster, local_model = None, None
    else:
        with _mlflow_uris(tracking_uri):
            local_model = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{model_name}/{version}",
                dst_path=str(model_dir),
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
        booster = mlflow.lightgbm.load_model(local_model)

    mf_rel = run.data.tags.get(MF_TAG)
    if not mf_rel:
        files = [f.path for f in client.list_artifacts(mv.run_id, MF_DIR) if not f.is_dir]
        if not files:
            raise ModelLookupError(f"run {mv.run_id} of {model_name} v{version} has no MF file")
        mf_rel = files[0]
    mf_path = Path(client.download_artifacts(mv.run_id, mf_rel, str(target)))

    names_path = Path(client.download_artifacts(mv.run_id, FEATURE_NAMES_FILE, str(target)))
    feature_names = list(json.loads(names_path.read_text(encoding="utf-8"))["feature_names"])

    return LoadedModel(
        version=version,
        run_id=mv.run_id,
        booster=booster,
        mf_path=mf_path,
        feature_names=feature_names,
        params=dict(run.data.params),
        tags=_user_tags(run.data.tags),
        metrics=dict(run.data.metrics),
        model_dir=Path(local_model) if local_model else None,
        version_tags=vtags,
        aliases=list(mv.aliases or []),
        baseline=baseline,
    )
