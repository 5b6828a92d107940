"""Versioned, validated, atomically published recommendation tables.

Layout under `recommendations/`:
    v=<stamp>-<id>/part-<shard>.parquet   one directory per run (complete before it counts)
    CURRENT                               the published version's name; replaced atomically
A version becomes current only after its checks pass; CURRENT is the source of truth and the
DuckDB view `recommendations` in warehouse.duckdb follows it (it is re-pointed after every
publish and repaired by `ensure_view` if a run died between the two).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from recpipe.errors import PublishError
from recpipe.tasks.common.expectation_suites import SuiteResult, validate_frame
from recpipe.tasks.common.sql_files import query

logger = logging.getLogger(__name__)
POINTER = "CURRENT"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_\-./=*]+$")


@dataclass
class PublishResult:
    version: str
    path: str
    previous: str | None
    removed: list[str]


_STAMP = "%Y%m%dT%H%M%S%f"


def new_version(recs_dir: Path) -> tuple[str, Path]:
    """A fresh version name, later in sort order than every existing one, and its directory.

    Retention keeps the newest versions by name, so names must sort in creation order even when
    two runs start within the same clock tick.
    """
    stamp = datetime.now(UTC).replace(tzinfo=None)
    existing = sorted(p.name for p in Path(recs_dir).glob("v=*")) if Path(recs_dir).exists() else []
    if existing:
        last = datetime.strptime(existing[-1][2:].split("-")[0], _STAMP)
        stamp = max(stamp, last + timedelta(microseconds=1))
    name = "v=" + stamp.strftime(_STAMP) + "-" + uuid.uuid4().hex[:6]
    path = Path(recs_dir) / name
    path.mkdir(parents=True, exist_ok=False)
    return name, path


def current_version(recs_dir: Path) -> str | None:
    """Name of the published version, or None before the first publish."""
    p = Path(recs_dir) / POINTER
    return p.read_text().strip() or None if p.exists() else None


def version_files(recs_dir: Path, version: str) -> list[str]:
    return sorted(str(p) for p in (Path(recs_dir) / version).glob("part-*.parquet"))


def recommendation_checks(
    recs_dir: Path, version: str, blocked_items: list, k: int, n_users: int
) -> SuiteResult:
    """Run the `recommendations` suite on per-user aggregates of `version` computed in DuckDB."""
    files = version_files(recs_dir, version)
    if not files:
        raise PublishError(f"{Path(recs_dir) / version}: no part files were written")
    con = duckdb.connect()
    try:
        con.read_parquet(files).create_view("version_rows")
        rows = con.sql("select typeof(item_id) from version_rows limit 1").fetchall()
        item_type = rows[0][0] if rows else "VARCHAR"
        if item_type not in ("BIGINT", "VARCHAR", "INTEGER"):
            raise PublishError(f"unexpected item_id type {item_type}")
        con.execute(f"create temp table blocked_items (item_id {item_type})")
        if blocked_items:
            con.executemany("insert into blocked_items values (?)", [[b] for b in blocked_items])
        frame = query(con, "recommendations/recommendation_checks").df()
    finally:
        con.close()
    return validate_frame(frame, "recommendations", {"k": int(k), "n_users": int(n_users)})


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_view(recs_dir: Path, warehouse: Path) -> str | None:
    """Point the DuckDB view `recommendations` at the CURRENT version; returns that version."""
    version = current_version(recs_dir)
    if version is None:
        return None
    glob_path = str((Path(recs_dir) / version).resolve() / "part-*.parquet")
    if not _SAFE_PATH.match(glob_path):  # the path is interpolated: a view cannot take parameters
        raise ValueError(f"refusing to create a view over an unusual path {glob_path!r}")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            f"create or replace view recommendations as select * from read_parquet('{glob_path}', hive_partitioning = false)"
        )
    return version


def published_version(
    recs_dir: Path, version: str, warehouse: Path, retention: int
) -> PublishResult:
    """Make `version` current (atomic pointer swap), re-point the view, drop old versions."""
    recs_dir = Path(recs_dir)
    previous = current_version(recs_dir)
    _atomic_write(recs_dir / POINTER, version + "\n")
    try:
        ensure_view(recs_dir, warehouse)
    except duckdb.IOException as exc:
        # another process holds warehouse.duckdb (DuckDB allows one writer): the version is
        # published (CURRENT is the source of truth); the view is re-pointed by the next run
        logger.warning(
            "published %s but could not re-point the DuckDB view: %s",
            version,
            str(exc).splitlines()[0],
        )
    removed = prune_versions(recs_dir, retention)
    logger.info("published %s (previous %s)", version, previous)
    return PublishResult(version, str(recs_dir / version), previous, removed)


def prune_versions(recs_dir: Path, retention: int) -> list[str]:
    """Delete all but the newest `retention` versions; never the current one."""
    recs_dir = Path(recs_dir)
    current = current_version(recs_dir)
    versions = sorted(p.name for p in recs_dir.glob("v=*") if p.is_dir())
    keep = set(versions[-max(retention, 1) :]) | ({current} if current else set())
    removed = [v for v in versions if v not in keep]
    for v in removed:
        shutil.rmtree(recs_dir / v, ignore_errors=True)
    return removed


def discard_version(recs_dir: Path, version: str) -> None:
    """Remove an unpublished version directory (after a failed run)."""
    if version != current_version(recs_dir):
        shutil.rmtree(Path(recs_dir) / version, ignore_errors=True)


@contextmanager
def pending_version(recs_dir: Path) -> Iterator[tuple[str, Path]]:
    """The publish transaction: a fresh version and its directory for the block to fill and
    publish; if the block fails at any point (or is interrupted), the unpublished version is
    removed and the error re-raised, so the previous version stays current and intact."""
    version, path = new_version(recs_dir)
    try:
        yield version, path
    except BaseException:
        discard_version(recs_dir, version)
        raise


def checked_version(
    recs_dir: Path,
    version: str,
    warehouse: Path,
    blocked_items: list,
    k: int,
    n_users: int,
    retention: int,
) -> PublishResult:
    """Check `version` with the recommendations suite and publish it only if every check passes
    (raises `PublishError` naming the failures otherwise)."""
    checks = recommendation_checks(recs_dir, version, blocked_items, k, n_users)
    if not checks.success:
        raise PublishError(
            f"version {version} failed its checks, previous version stays current: "
            f"{checks.failures()}"
        )
    return published_version(recs_dir, version, warehouse, retention)
