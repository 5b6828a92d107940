"""Checks a command runs before it starts Prefect: a wrong path, an unwritable data directory or
a cutoff before the first event fails in a second with one line, not after the server start."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from recpipe.errors import InputError, MissingInputError
from recpipe.settings import Settings

# what a run writes under the data directory (each checked when it already exists)
_WRITTEN = ("lake", "recommendations", "models", ".prefect", "warehouse.duckdb", "mlflow.db")


def writable_dir(path: Path, option: str) -> Path:
    """`path` as a directory, created if missing; `InputError` naming `option` when it is a
    file or cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {path} cannot be created ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path} is not writable")
    return path


def writable_data_dir(data_dir: Path) -> Path:
    """The data directory, created if missing; `InputError` when it or what a run writes in it
    cannot be written, or when its path has a `?` (the SQLite URLs of MLflow and Prefect end
    their path at a `?`; spaces, quotes, `#`, `%` and any letters are fine)."""
    if "?" in str(data_dir):
        raise InputError(
            f"--data-dir {data_dir}: a '?' in the path cannot be part of the SQLite URLs that "
            "keep MLflow and Prefect under the data directory; choose a path without '?'"
        )
    path = writable_dir(data_dir, "--data-dir")
    for p in (path, *(path / name for name in _WRITTEN)):
        if p.exists() and not os.access(p, os.W_OK | (os.X_OK if p.is_dir() else 0)):
            raise InputError(
                f"{p} is not writable; a run writes there (fix its permissions or choose "
                "another --data-dir)"
            )
    return path


def existing_file(path: str | Path | None, option: str) -> None:
    """`MissingInputError` naming `option` when a given file does not exist."""
    if path is not None and not Path(path).expanduser().is_file():
        what = "is a directory, not a file" if Path(path).is_dir() else "does not exist"
        raise MissingInputError(f"{option} {path} {what}")


def existing_inputs(events: str | None, items: str | None, users: str | None) -> None:
    """The ingest inputs exist (events: a file, a directory with event files, or a glob)."""
    from recpipe.tasks.ingest.ingested_events import source_files

    if events is not None:
        source_files(events)
    existing_file(items, "--items")
    existing_file(users, "--users")


def cutoff_after_first_event(settings: Settings, as_of: datetime | None) -> None:
    """`--as-of` before the lake's first event (or an empty lake) fails before any work. With
    an object store, the working copy first pulls the store's lake (what the flow does first)."""
    from recpipe.tasks.ingest.lake_cutoffs import run_cutoff
    from recpipe.tasks.ingest.lake_mirror import pulled_lake

    pulled_lake(settings.lake_dir, settings.store_config())
    run_cutoff(settings.lake_dir, as_of)
