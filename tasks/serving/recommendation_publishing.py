"""Versioned, validated, atomically published recommendation tables.

Layout under `recommendations/`:
    v=<stamp>-<id>/part-<shard>.parquet   one directory per run (complete before it counts)
    v=<stamp>-<id>/.owner                 the writing process (pid, host) until it is published
    CURRENT                               the published version's name; replaced atomically
Publishing is one transaction with one order: write the version, check it (the
`recommendations` suite, and never empty or under half the current version's users unless a
shrink is allowed), point the DuckDB view `recommendations` in warehouse.duckdb at its files,
then replace CURRENT last. CURRENT is the source of truth: if the view cannot be re-pointed
(another process holds the warehouse) the version is still published, with a warning, and
`ensure_view` (run by every publish) repairs the view. An interrupted run removes its version;
a version left by a killed run (its owner is dead) is removed by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
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
from recpipe.tasks.common.processes import pid_alive
from recpipe.tasks.common.sql_files import query
from recpipe.tasks.common.stage_timings import stage

logger = logging.getLogger(__name__)
POINTER = "CURRENT"
OWNER = ".owner"  # hidden from Parquet readers (leading dot)
MIN_USER_SHARE = 0.5  # a new version under this share of the current one's users is refused


@dataclass
class PublishResult:
    version: str
    path: str
    previous: str | None
    removed: list[str]


_STAMP = "%Y%m%dT%H%M%S%f"


DEFAULT_LIST_FILE = "default-list.parquet"
"""A version's list for users its table does not hold (next to its part files)."""


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
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (path / OWNER).write_text(json.dumps(owner) + "\n")
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


def point_view(warehouse: Path, version_dir: Path) -> None:
    """Point the DuckDB view `recommendations` at the part files of `version_dir`.

    A view stores its SQL and cannot take parameters, so the files are listed as SQL string
    literals (quotes doubled): spaces, quotes and non-ASCII letters work as they are. DuckDB
    expands glob characters even in a list of files (`a?b` also reads `aXb`), so `*`, `?` and
    `[` are matched as themselves (`_file_pattern`), and each pattern is checked to match only
    its own file before the view is replaced."""
    files = sorted(str(p.resolve()) for p in Path(version_dir).glob("part-*.parquet"))
    if not files:
        raise PublishError(f"{version_dir}: no part files to point the view at")
    patterns = [_file_pattern(f) for f in files]
    with duckdb.connect() as con:
        for file, pattern in zip(files, patterns, strict=True):
            found = [
                r[0] for r in con.execute("select file from glob($p)", {"p": pattern}).fetchall()
            ]
            if found != [file]:
                raise PublishError(f"{file}: DuckDB cannot read this path as one file ({found})")
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in patterns)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create or replace view recommendations as select * from "
            f"read_parquet([{listed}], hive_partitioning = false)"
        )


def _file_pattern(path: str) -> str:
    """A DuckDB file pattern matching only `path`: a path with glob characters is globbed, so
    each `*`, `?`, `[` becomes a one-character class (`[*]`). (A globbed path cannot also hold a
    backslash, a separator to DuckDB's glob: `point_view` finds no match and refuses it.)"""
    if not any(c in path for c in "*?["):
        return path  # read as it is
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def ensure_view(recs_dir: Path, warehouse: Path) -> str | None:
    """Point the DuckDB view `recommendations` at the CURRENT version; returns that version."""
    version = current_version(recs_dir)
    if version is None:
        return None
    point_view(warehouse, Path(recs_dir) / version)
    return version


def published_version(
    recs_dir: Path, version: str, warehouse: Path, retention: int
) -> PublishResult:
    """Publish the written and checked `version`: point the view at it, replace CURRENT (the
    commit point), then drop old versions. A view that cannot be re-pointed is a warning (the
    version is published once CURRENT moved; the next publish repairs the view); if CURRENT
    cannot be replaced, the view goes back to the previous version and the error is raised."""
    recs_dir = Path(recs_dir)
    previous = current_version(recs_dir)
    view_moved = _try_point_view(warehouse, recs_dir / version, version)
    try:
        _atomic_write(recs_dir / POINTER, version + "\n")
    except BaseException:
        if view_moved and previous:
            _try_point_view(warehouse, recs_dir / previous, previous)
        raise
    (recs_dir / version / OWNER).unlink(missing_ok=True)
    removed = prune_versions(recs_dir, retention)
    logger.info("published %s (previous %s)", version, previous)
    return PublishResult(version, str(recs_dir / version), previous, removed)


def _try_point_view(warehouse: Path, version_dir: Path, version: str) -> bool:
    try:
        point_view(warehouse, version_dir)
        return True
    except (duckdb.Error, OSError, PublishError) as exc:
        # e.g. another process holds warehouse.duckdb (DuckDB allows one writer): CURRENT is
        # the source of truth; the view is re-pointed by the next publish or `ensure_view`
        logger.warning(
            "could not point the DuckDB view `recommendations` at %s: %s",
            version,
            str(exc).splitlines()[0],
        )
        return False


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


def remove_orphan_versions(recs_dir: Path) -> list[str]:
    """Remove unpublished versions whose writer died (its `.owner` names a process of this host
    that no longer runs); a live writer's version, the current one and versions of other hosts
    are left alone."""
    recs_dir = Path(recs_dir)
    current, host, removed = current_version(recs_dir), socket.gethostname(), []
    for owner_file in sorted(recs_dir.glob(f"v=*/{OWNER}")):
        version = owner_file.parent.name
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if version == current or owner.get("host") != host or pid_alive(int(owner.get("pid", 0))):
            continue
        shutil.rmtree(owner_file.parent, ignore_errors=True)
        removed.append(version)
    if removed:
        logger.warning("removed versions left by interrupted runs: %s", removed)
    return removed


@contextmanager
def pending_version(recs_dir: Path) -> Iterator[tuple[str, Path]]:
    """The publish transaction: a fresh version and its directory for the block to fill and
    publish; if the block fails at any point (or is interrupted), the unpublished version is
    removed and the error re-raised, so the previous version stays current and intact. Versions
    left by killed runs are removed first."""
    remove_orphan_versions(recs_dir)
    version, path = new_version(recs_dir)
    try:
        yield version, path
    except BaseException:
        discard_version(recs_dir, version)
        raise


def version_users(recs_dir: Path, version: str | None) -> int:
    """Distinct users in `version` (0 for None or a version without rows)."""
    files = version_files(recs_dir, version) if version else []
    if not files:
        return 0
    with duckdb.connect() as con:
        return con.execute(
            "select count(distinct user_id) from read_parquet($files)", {"files": files}
        ).fetchone()[0]


def size_guard(recs_dir: Path, version: str, allow_shrink: bool) -> None:
    """`PublishError` when `version` is empty (always), or covers under `MIN_USER_SHARE` of the
    current version's users (unless `allow_shrink`); the message names both counts."""
    current = current_version(recs_dir)
    new_users = version_users(recs_dir, version)
    current_users = version_users(recs_dir, current)
    if new_users == 0:
        now = f"the current {current} covers {current_users:,}" if current else "none is current"
        raise PublishError(
            f"version {version} covers 0 users, {now}; refusing to publish an empty table (no "
            "user has an item to recommend: e.g. every item unavailable or excluded)"
        )
    if current is None or allow_shrink:
        return
    if new_users < MIN_USER_SHARE * current_users:
        raise PublishError(
            f"version {version} covers {new_users:,} users, the current {current} covers "
            f"{current_users:,}; refusing to publish a table under {MIN_USER_SHARE:.0%} of the "
            "current one (pass --allow-shrink to publish it anyway)"
        )


def checked_version(
    recs_dir: Path,
    version: str,
    warehouse: Path,
    blocked_items: list,
    k: int,
    n_users: int,
    retention: int,
    allow_shrink: bool,
) -> PublishResult:
    """Check `version` (its size against the current one, then the recommendations suite) and
    publish it only if every check passes (raises `PublishError` naming the failures
    otherwise)."""
    with stage("publish_checks", rows_in=n_users):
        size_guard(recs_dir, version, allow_shrink)
        checks = recommendation_checks(recs_dir, version, blocked_items, k, n_users)
    if not checks.success:
        raise PublishError(
            f"version {version} failed its checks, previous version stays current: "
            f"{checks.failures()}"
        )
    with stage("publish", rows_in=n_users):
        return published_version(recs_dir, version, warehouse, retention)
