"""Cutoffs derived from the lake: the default `as_of` is just after the last landed event."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from recpipe.errors import NoDataError
from recpipe.tasks.ingest import event_lake


def last_event_ts(lake_dir: Path) -> datetime | None:
    """Latest landed event timestamp according to the manifest, or None for an empty lake."""
    stamps = [
        r.max_ts
        for r in event_lake.read_manifest(lake_dir).ingests
        if r.kind == "events" and r.max_ts
    ]
    return max(datetime.fromisoformat(s) for s in stamps) if stamps else None


def default_as_of(lake_dir: Path) -> datetime:
    """The second after the last event, so every landed event is before the cutoff."""
    last = last_event_ts(lake_dir)
    if last is None:
        raise NoDataError(f"{lake_dir}: the lake holds no events; run `recpipe ingest` first")
    return last.replace(microsecond=0) + timedelta(seconds=1)


def lake_fingerprint(lake_dir: Path) -> str:
    """Hash of every landed file's sha256: changes whenever the lake's content changes."""
    import hashlib

    fps = sorted(r.fingerprint for r in event_lake.read_manifest(lake_dir).ingests)
    return hashlib.sha256("\n".join(fps).encode()).hexdigest()[:16]
