"""The validated lake: Parquet event files, quarantine, catalogue snapshots and a manifest.

The manifest (`lake/_manifest.json`) is the single source of truth: a file under `lake/` is part
of the lake only once the manifest names it, and every reader lists files from it (`lake_paths`,
`event_files_between`), never by globbing `lake/events/`. An ingest writes every file at its
final name inside per-ingest directories under `lake/_staging/<id>/lake/`
(`events/ingest-<id>/part-*.parquet`, `quarantine/ingest=<id>/`, `items/ingest-<id>/`,
`users/ingest-<id>/`), moves each of those directories into `lake/` with ONE rename (events
last), and only then replaces the manifest atomically. So a killed ingest leaves under
`lake/events/` either nothing new or, if killed between the events rename and the manifest
replace, one directory `events/ingest-<id>/` that the manifest does not name: no reader sees it,
and the next ingest's `remove_orphans` deletes it once its owner (see `staging_owners`) is dead.
Tests SIGKILL an ingest at each publish step through `RECPIPE_TEST_KILL_AT` (`_kill_point`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

from recpipe.tasks.ingest import staging_owners

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
_PARTITION_DATE = re.compile(r"(?:^|[\\/])event_date=(\d{4}-\d{2}-\d{2})[\\/]")
LAKE_KINDS = ("quarantine", "items", "users", "events")  # publish order: events last
KILL_AT_ENV = "RECPIPE_TEST_KILL_AT"
_STALE_TMP_S = 600  # a manifest temp file older than this belongs to no live writer


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

    Uses each ingest record's min/max ts (one record per source file) and, in lakes written
    before event files stopped being split by day, the `event_date=` directory of each file
    (files without either are kept), so an ingest only reads the part of the lake its rows
    overlap.
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


def batch_dir(kind: str, ingest_id: str) -> str:
    """The per-ingest directory (relative to the lake) that holds one ingest's files of a kind.

    `ingest-<id>` is no hive key, so readers with hive auto-detection get no extra column;
    quarantine keeps its `ingest=<id>` key, which quarantine readers have always seen.
    """
    return (
        f"quarantine/ingest={ingest_id}" if kind == "quarantine" else f"{kind}/ingest-{ingest_id}"
    )


def _kill_point(name: str) -> None:
    """Test hook: `RECPIPE_TEST_KILL_AT=<name>` SIGKILLs the process here (crash-safety tests)."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def publish_staged(
    lake_dir: Path,
    staged_lake: Path,
    ingest_id: str,
    records: list[IngestRecord],
    id_types: dict[str, str],
) -> LakeManifest:
    """Move one ingest's staged directories into the lake and append its records to the manifest.

    `staged_lake` mirrors the lake: the records' paths are relative to both, and all of them lie
    in the `batch_dir`s of `ingest_id`. Each such directory moves with one rename (events last),
    then the manifest is replaced; the caller removes what is left of the staging directory.
    """
    lake_dir, staged_lake = Path(lake_dir), Path(staged_lake)
    _kill_point("publish")
    for kind in LAKE_KINDS:
        src = staged_lake / batch_dir(kind, ingest_id)
        if not src.is_dir():
            continue
        dst = lake_dir / batch_dir(kind, ingest_id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        _kill_point(f"renamed:{kind}")
    manifest = read_manifest(lake_dir)
    if not manifest.id_types:
        manifest.id_types = dict(id_types)
    manifest.ingests.extend(records)
    write_manifest(lake_dir, manifest)
    _kill_point("manifest")
    return manifest


def _listed(lake_dir: Path) -> set[str]:
    manifest = read_manifest(lake_dir)
    return {str(lake_dir / f) for r in manifest.ingests for f in r.files + r.quarantine_files}


def _ingest_of(lake_dir: Path, path: Path) -> str | None:
    """The ingest id in a lake path (every file an ingest writes carries it), if any."""
    m = staging_owners.INGEST_ID.search(str(path.relative_to(lake_dir)))
    return m.group(0) if m else None


def remove_orphans(lake_dir: Path) -> int:
    """Delete dead ingests' staging directories and the lake files no manifest entry names.

    Files of an ingest whose owner is alive (one in flight, between its renames and its
    manifest) are kept; the manifest is read again after the owners are checked, so files an
    ingest published meanwhile are kept too. Returns the number of lake files removed.
    """
    lake_dir = Path(lake_dir)
    if not lake_dir.exists():
        return 0
    staging_owners.remove_dead_staging(lake_dir)
    for tmp in lake_dir.glob(".manifest-*.tmp"):  # a manifest write killed half-way
        try:
            if time.time() - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink()
        except FileNotFoundError:
            pass
    known = _listed(lake_dir)
    unlisted = [
        path
        for kind in LAKE_KINDS
        if (lake_dir / kind).is_dir()
        for path in sorted((lake_dir / kind).rglob("*.parquet"))
        if str(path) not in known
    ]
    if not unlisted:
        return 0
    owners = lake_dir / staging_owners.STAGING_DIR
    ids = {i for p in unlisted if (i := _ingest_of(lake_dir, p))}
    alive = {
        i for i in ids if staging_owners.owner_alive(owners / f"{i}{staging_owners.OWNER_SUFFIX}")
    }
    known = _listed(lake_dir)  # after the owner checks: see the docstring
    removed = 0
    for path in unlisted:
        if _ingest_of(lake_dir, path) in alive or str(path) in known:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    for kind in LAKE_KINDS:  # directories left empty (the kind directories themselves stay)
        top = lake_dir / kind
        for d in sorted((d for d in top.rglob("*") if d.is_dir()), reverse=True):
            if _ingest_of(lake_dir, d) not in alive and not any(d.iterdir()):
                try:
                    d.rmdir()
                except OSError:
                    pass
    if removed:
        logger.info("removed %d orphaned lake files", removed)
    return removed
