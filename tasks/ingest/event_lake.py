"""The validated lake: Parquet event partitions, quarantine, catalogue snapshots and a manifest.

The manifest (`lake/_manifest.json`) is the single source of truth: a file under `lake/` is
part of the lake only once the manifest names it. Ingests write to `lake/_staging/<id>/`,
move finished files into place, and only then replace the manifest atomically, so an ingest
killed at any point leaves the lake readers see exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
_PARTITION_DATE = re.compile(r"(?:^|[\\/])event_date=(\d{4}-\d{2}-\d{2})[\\/]")


@dataclass
class IngestRecord:
    """One landed source file: its fingerprint and the lake files it produced."""

    ingest_id: str
    source: str
    fingerprint: str
    kind: str  # "events", "items" or "users"
    rows_in: int
    rows_landed: int
    rows_quarantined: int
    files: list[str] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)
    landed_at: str = ""
    min_ts: str | None = None
    max_ts: str | None = None


@dataclass
class LakeManifest:
    """What the lake holds: id types fixed by the first ingest, and every landed file."""

    version: int = MANIFEST_VERSION
    id_types: dict[str, str] = field(default_factory=dict)
    ingests: list[IngestRecord] = field(default_factory=list)

    def fingerprints(self) -> set[str]:
        return {r.fingerprint for r in self.ingests}

    def files(self, kind: str) -> list[str]:
        return [f for r in self.ingests if r.kind == kind for f in r.files]

    def latest(self, kind: str) -> IngestRecord | None:
        recs = [r for r in self.ingests if r.kind == kind]
        return recs[-1] if recs else None


def read_manifest(lake_dir: Path) -> LakeManifest:
    """The current manifest, or an empty one for a lake that has never been written."""
    path = Path(lake_dir) / MANIFEST_NAME
    if not path.exists():
        return LakeManifest()
    raw = json.loads(path.read_text())
    return LakeManifest(
        version=raw.get("version", MANIFEST_VERSION),
        id_types=raw.get("id_types", {}),
        ingests=[IngestRecord(**r) for r in raw.get("ingests", [])],
    )


def write_manifest(lake_dir: Path, manifest: LakeManifest) -> None:
    """Replace the manifest atomically (temp file in the same directory, fsync, rename)."""
    lake_dir = Path(lake_dir)
    lake_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(
        {
            "version": manifest.version,
            "id_types": manifest.id_types,
            "ingests": [asdict(r) for r in manifest.ingests],
        },
        indent=1,
    )
    fd, tmp = tempfile.mkstemp(dir=lake_dir, prefix=".manifest-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, lake_dir / MANIFEST_NAME)


def file_fingerprint(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes: the identity used to refuse re-ingesting the same file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def lake_paths(lake_dir: Path, kind: str) -> list[str]:
    """Absolute paths of the manifest-listed files of one kind (events, items, users, quarantine)."""
    lake_dir = Path(lake_dir)
    manifest = read_manifest(lake_dir)
    if kind == "quarantine":
        rel = [f for r in manifest.ingests for f in r.quarantine_files]
    elif kind in ("items", "users"):
        latest = manifest.latest(kind)
        rel = latest.files if latest else []
    else:
        rel = manifest.files(kind)
    return [str(lake_dir / f) for f in rel]


def event_files_between(lake_dir: Path, lo: datetime, hi: datetime) -> list[str]:
    """Absolute paths of the landed event files that can hold rows with ts in [lo, hi].

    Uses each ingest record's min/max ts and the `event_date=` partition of each file (files
    without either are kept), so an ingest only reads the part of the lake its rows overlap.
    """
    lake_dir = Path(lake_dir)
    out: list[str] = []
    for rec in read_manifest(lake_dir).ingests:
        if rec.kind != "events" or not rec.files:
            continue
        if (
            rec.min_ts
            and rec.max_ts
            and (datetime.fromisoformat(rec.min_ts) > hi or datetime.fromisoformat(rec.max_ts) < lo)
        ):
            continue
        for rel in rec.files:
            day = _PARTITION_DATE.search(rel)
            if day and not lo.date() <= date.fromisoformat(day.group(1)) <= hi.date():
                continue
            out.append(str(lake_dir / rel))
    return out


def publish_staged(
    lake_dir: Path,
    staging_dir: Path,
    records: list[tuple[IngestRecord, Path]],
    id_types: dict[str, str],
) -> LakeManifest:
    """Move staged files into the lake and append their records to the manifest.

    Each record comes with the staging folder its `files`/`quarantine_files` are relative to;
    they land at the same relative paths under `lake_dir`. The manifest is replaced last.
    """
    lake_dir = Path(lake_dir)
    for rec, src_root in records:
        for rel in rec.files + rec.quarantine_files:
            dst = lake_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(src_root) / rel, dst)
    manifest = read_manifest(lake_dir)
    if not manifest.id_types:
        manifest.id_types = dict(id_types)
    manifest.ingests.extend(rec for rec, _ in records)
    write_manifest(lake_dir, manifest)
    shutil.rmtree(staging_dir, ignore_errors=True)
    return manifest


def remove_orphans(lake_dir: Path) -> int:
    """Delete staging leftovers and files no manifest entry names (from killed ingests)."""
    lake_dir = Path(lake_dir)
    if not lake_dir.exists():
        return 0
    shutil.rmtree(lake_dir / "_staging", ignore_errors=True)
    manifest = read_manifest(lake_dir)
    known = {str(lake_dir / f) for r in manifest.ingests for f in r.files + r.quarantine_files}
    removed = 0
    for sub in ("events", "quarantine", "items", "users"):
        for path in (lake_dir / sub).rglob("*.parquet") if (lake_dir / sub).exists() else []:
            if str(path) not in known:
                path.unlink()
                removed += 1
    if removed:
        logger.info("removed %d orphaned lake files", removed)
    return removed
