"""Content-addressed outputs for Prefect task caching.

A cached task writes to a path derived from a hash of its inputs (data fingerprint and
configuration). The cache key is that path while the file exists; if the file is gone the
key is unique, so Prefect recomputes instead of returning a result that points nowhere.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any


def config_hash(*parts: Any) -> str:
    """Stable short hash of JSON-serialisable parts (datetimes and paths as strings)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def output_path_cache_key(context, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn: the task's `out_path` while that file exists, else a fresh key."""
    out = Path(parameters["out_path"])
    if not out.exists():
        return f"rebuild-{uuid.uuid4().hex}"
    return "out-" + hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:32]
