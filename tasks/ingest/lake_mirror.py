"""The lake on an object store: `lake/` under the store's prefix mirrors the local lake.

The manifest is the commit point there as it is on disk: a push uploads every file the local
manifest names that the store lacks, then the manifest; a pull downloads the files the store's
manifest names that the working copy lacks, then writes the local manifest. A reader that lists
files from either manifest never sees a partial ingest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from recpipe.errors import IngestError
from recpipe.settings import StoreConfig
from recpipe.tasks.common.object_store import ObjectStore, object_store
from recpipe.tasks.ingest import event_lake

logger = logging.getLogger(__name__)

LAKE_PREFIX = "lake"


@dataclass
class LakeSync:
    direction: str  # "push", "pull" or "none"
    files: int
    ingests: int


def _named_files(manifest: event_lake.LakeManifest) -> list[str]:
    return [f for r in manifest.ingests for f in (*r.files, *r.quarantine_files)]


def _remote_manifest(store: ObjectStore) -> event_lake.LakeManifest:
    text = store.read_text(f"{LAKE_PREFIX}/{event_lake.MANIFEST_NAME}")
    if text is None:
        return event_lake.LakeManifest()
    raw = json.loads(text)
    return event_lake.LakeManifest(
        version=raw.get("version", event_lake.MANIFEST_VERSION),
        id_types=raw.get("id_types", {}),
        ingests=[event_lake.IngestRecord(**r) for r in raw.get("ingests", [])],
    )


def pushed_lake(lake_dir: Path, store_cfg: StoreConfig) -> LakeSync:
    """Upload what the local lake has and the store lacks, the manifest last."""
    store = object_store(**vars(store_cfg))
    if store is None:
        return LakeSync("none", 0, 0)
    return _push(Path(lake_dir), store)


def _push(lake_dir: Path, store: ObjectStore) -> LakeSync:
    local = event_lake.read_manifest(lake_dir)
    remote = _remote_manifest(store)
    missing_here = [
        r.ingest_id for r in remote.ingests if r.fingerprint not in local.fingerprints()
    ]
    if missing_here:
        raise IngestError(
            f"{store.url}/{LAKE_PREFIX}: the store holds ingests this data directory lacks "
            f"({', '.join(missing_here[:3])}); pull them first (any `recpipe` run does)"
        )
    new = [r for r in local.ingests if r.fingerprint not in remote.fingerprints()]
    if not new and remote.ingests:
        return LakeSync("none", 0, 0)
    stored = store.listed(LAKE_PREFIX)
    files = [f for f in _named_files(local) if f"{LAKE_PREFIX}/{f}" not in stored]
    for f in files:
        store.upload(lake_dir / f, f"{LAKE_PREFIX}/{f}")
    manifest = (lake_dir / event_lake.MANIFEST_NAME).read_text()
    store.write_text(f"{LAKE_PREFIX}/{event_lake.MANIFEST_NAME}", manifest)  # the commit point
    logger.info("lake pushed to %s: %d files, %d new ingests", store.url, len(files), len(new))
    return LakeSync("push", len(files), len(new))


def pulled_lake(lake_dir: Path, store_cfg: StoreConfig) -> LakeSync:
    """Download what the store's lake has and the working copy lacks, the manifest last; push
    instead when the working copy is ahead (an earlier push failed after its ingest)."""
    store = object_store(**vars(store_cfg))
    if store is None:
        return LakeSync("none", 0, 0)
    lake_dir = Path(lake_dir)
    local = event_lake.read_manifest(lake_dir)
    remote = _remote_manifest(store)
    if not (remote.fingerprints() - local.fingerprints()):
        if local.fingerprints() - remote.fingerprints():
            return _push(lake_dir, store)
        return LakeSync("none", 0, 0)
    ahead = local.fingerprints() - remote.fingerprints()
    if ahead:
        raise IngestError(
            f"{lake_dir}: the working copy and {store.url}/{LAKE_PREFIX} have each landed files "
            "the other lacks; use a fresh data directory (it pulls the store's lake)"
        )
    files = [f for f in _named_files(remote) if not (lake_dir / f).exists()]
    for f in files:
        store.download(f"{LAKE_PREFIX}/{f}", lake_dir / f)
    event_lake.write_manifest(lake_dir, remote)  # the commit point of the working copy
    n_new = len(remote.fingerprints() - local.fingerprints())
    logger.info("lake pulled from %s: %d files, %d new ingests", store.url, len(files), n_new)
    return LakeSync("pull", len(files), n_new)
