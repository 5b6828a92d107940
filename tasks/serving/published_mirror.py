"""Published recommendation versions on the object store, with the same promise as on disk.

`recommendations/<version>/part-*.parquet` objects are uploaded first, then the
`recommendations/CURRENT` object (one PUT) names the version: a reader that reads CURRENT and
then the version's objects never sees a partial version. Versions the local retention dropped
are deleted from the store after the pointer moved (never the current one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from recpipe.settings import StoreConfig
from recpipe.tasks.common.object_store import ObjectStore, object_store
from recpipe.tasks.serving.recommendation_publishing import POINTER

logger = logging.getLogger(__name__)

RECS_PREFIX = "recommendations"


@dataclass
class MirroredVersion:
    url: str | None  # s3://.../recommendations/<version>, None without a store
    files: int
    removed: list[str]


def mirrored_version(recs_dir: Path, version: str, store_cfg: StoreConfig) -> MirroredVersion:
    """Upload the published `version` and move the store's CURRENT to it."""
    store = object_store(**vars(store_cfg))
    if store is None:
        return MirroredVersion(None, 0, [])
    version_dir = Path(recs_dir) / version
    files = sorted(
        p for p in version_dir.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
    )
    for p in files:
        store.upload(p, f"{RECS_PREFIX}/{version}/{p.name}")
    store.write_text(f"{RECS_PREFIX}/{POINTER}", version + "\n")  # the commit point
    kept = {p.name for p in Path(recs_dir).glob("v=*")} | {version}
    stored = {rel.split("/")[1] for rel in store.listed(RECS_PREFIX) if rel.count("/") >= 2}
    removed = sorted(v for v in stored - kept if v.startswith("v="))
    for v in removed:
        store.delete_dir(f"{RECS_PREFIX}/{v}")
    url = f"{store.url}/{RECS_PREFIX}/{version}"
    logger.info("published %s to %s (%d files)", version, url, len(files))
    return MirroredVersion(url, len(files), removed)


def stored_current(store: ObjectStore) -> str | None:
    """The version the store's CURRENT names."""
    text = store.read_text(f"{RECS_PREFIX}/{POINTER}")
    return text.strip() if text else None


def stored_version_glob(store: ObjectStore, version: str) -> str:
    """`s3://` glob of a stored version's Parquet files (for `duckdb_connection`)."""
    return f"{store.url}/{RECS_PREFIX}/{version}/part-*.parquet"
