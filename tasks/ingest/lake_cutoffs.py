"""Cutoffs derived from the lake: the default `as_of` is just after the last landed event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from recpipe.errors import InputError, NoDataError
from recpipe.tasks.ingest import event_lake


def _event_stamps(lake_dir: Path, bound: str) -> list[datetime]:
    """The `min_ts` or `max_ts` of every landed events file, from the manifest."""
    records = event_lake.read_manifest(lake_dir).ingests
    return [
        datetime.fromisoformat(getattr(r, bound))
        for r in records
        if r.kind == "events" and getattr(r, bound)
    ]


def last_event_ts(lake_dir: Path) -> datetime | None:
    """Latest landed event timestamp according to the manifest, or None for an empty lake."""
    return max(_event_stamps(lake_dir, "max_ts"), default=None)


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


def first_event_ts(lake_dir: Path) -> datetime | None:
    """Earliest landed event timestamp according to the manifest, or None for an empty lake."""
    return min(_event_stamps(lake_dir, "min_ts"), default=None)


def run_cutoff(lake_dir: Path, as_of: datetime | None = None) -> datetime:
    """A run's cutoff: `as_of` (naive UTC) when given, else `default_as_of`. A cutoff at or
    before the lake's first event would leave nothing to work on: `InputError` naming both."""
    if as_of is None:
        return default_as_of(lake_dir)
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    first = first_event_ts(lake_dir)
    if first is None:
        raise NoDataError(f"{lake_dir}: the lake holds no events; run `recpipe ingest` first")
    if as_of <= first:
        raise InputError(
            f"--as-of {as_of} is not after the lake's first event ({first}); nothing happened "
            "before that cutoff. Choose a later --as-of or leave it out (default: after the last "
            "event)"
        )
    return as_of
