"""Content-addressed outputs for Prefect task caching.

A cached task writes to a path derived from a hash of its inputs (data fingerprint and
configuration); the cache key is a hash of that path. Callers run the task with
`refresh_cache=True` when the file is missing (`cached_call`), so a deleted output is rebuilt
instead of Prefect returning a result that points nowhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def config_hash(*parts: Any) -> str:
    """Stable short hash of JSON-serialisable parts (datetimes and paths as strings)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def output_path_cache_key(context, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn: a hash of the task's content-addressed `out_path`."""
    out = Path(parameters["out_path"])
    return "out-" + hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:32]


def cached_call(prefect_task, *args, out_path: str, **kwargs):
    """Call a task cached on `out_path`, forcing a recompute when that file is missing."""
    return prefect_task.with_options(refresh_cache=not Path(out_path).exists())(
        *args, out_path=out_path, **kwargs
    )


@dataclass(frozen=True)
class TrainingCacheFiles:
    """Content-addressed outputs of one training run's cached steps."""

    als: dict[str, str]  # snapshot -> ALS factors (.npz); each key chains the previous one
    training_set: str  # .npz
    ranker: str  # .lgb
    run_dir: Path  # reports of this (ranker, evaluation window)


def training_cache_files(
    models_dir: Path, fingerprint: str, windows, feat_cfg, params
) -> TrainingCacheFiles:
    """Where the train flow's cached steps write, keyed by the data fingerprint, the windows and
    every setting that changes the output (so unchanged reruns reuse the files)."""
    cache = Path(models_dir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    base = [fingerprint, windows.serve, windows.train, dataclasses.asdict(feat_cfg)]
    if windows.earlier:  # keys of runs on one window stay as they were
        base.append(list(windows.earlier))
    als = params.als.model_dump()
    als_files, key = {}, None
    for snap in windows.cutoffs():  # eval and serve start from the previous snapshot's fit
        key = config_hash(base, snap, als, params.seed, key)
        als_files[snap] = str(cache / f"als-{key}.npz")
    ts_key = config_hash(
        base, als, dataclasses.asdict(params.candidates), params.max_train_users, params.seed
    )
    rk_key = config_hash(ts_key, params.ranker.model_dump())
    return TrainingCacheFiles(
        als_files,
        str(cache / f"trainset-{ts_key}.npz"),
        str(cache / f"ranker-{rk_key}.lgb"),
        Path(models_dir) / "runs" / config_hash(rk_key, windows.eval_window),
    )
