"""Content-addressed outputs for Prefect task caching.

A cached task writes to a path derived from a hash of its inputs (data fingerprint and
configuration); the cache key is a hash of that path. Callers run the task with
`refresh_cache=True` when the file is missing (`cached_call`), so a deleted output is rebuilt
instead of Prefect returning a result that points nowhere.
"""

from __future__ import annotations

import hashlib
import json
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
        *args, out_path=out_path, **kwargs)
