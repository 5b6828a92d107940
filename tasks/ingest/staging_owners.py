"""Who owns each ingest's staging directory, so clean-up only removes the leftovers of dead ones.

An ingest claims `lake/_staging/<ingest_id>/` by first creating `lake/_staging/<ingest_id>.owner`
(pid, host and start time, for people) and holding an exclusive `fcntl.flock` on it for its whole
life; the operating system releases the lock however the process dies. The owner file exists
(locked) before the directory is created and is removed only after it, so a staging directory
whose owner file is missing or unlocked belongs to a dead ingest. Clean-up removes exactly those,
never a live ingest's files in flight. If the file system cannot lock at all, an owner naming
this host is alive while its pid is, and an owner on another host is assumed alive.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recpipe.tasks.common.processes import pid_alive

logger = logging.getLogger(__name__)

STAGING_DIR = "_staging"
OWNER_SUFFIX = ".owner"
_CLAIMING_SUFFIX = ".owner.claiming"
_CLAIMING_MAX_AGE_S = 600  # an unlocked half-made claim older than this is a crash leftover
INGEST_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")  # see `new_ingest_id`


def new_ingest_id() -> str:
    """A unique, sortable ingest id (UTC start time + random suffix); matches `INGEST_ID`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class StagingClaim:
    """A live ingest's staging directory and the open, locked owner file that proves it alive."""

    ingest_id: str
    staging: Path
    owner: Path
    fd: int

    def release(self) -> None:
        """Remove the staging directory, then the owner file, then drop the lock (in that order:
        a staging directory never outlives its owner file)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.owner.unlink(missing_ok=True)
        os.close(self.fd)


def claim_staging(lake_dir: Path, ingest_id: str) -> StagingClaim:
    """Create `lake/_staging/<ingest_id>/` owned (flock held) by this process until `release`."""
    root = Path(lake_dir) / STAGING_DIR
    root.mkdir(parents=True, exist_ok=True)
    claiming = root / f".{ingest_id}{_CLAIMING_SUFFIX}"
    owner = root / f"{ingest_id}{OWNER_SUFFIX}"
    fd = os.open(claiming, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _try_lock(fd)  # a new file (O_EXCL): nobody else can hold it
        info = {
            "ingest_id": ingest_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.replace(claiming, owner)  # the owner file appears already locked
        staging = root / ingest_id
        staging.mkdir()
    except BaseException:
        claiming.unlink(missing_ok=True)
        owner.unlink(missing_ok=True)
        os.close(fd)
        raise
    return StagingClaim(ingest_id, staging, owner, fd)


def _try_lock(fd: int) -> bool | None:
    """Take an exclusive flock without waiting: True, False when another holds it, None when
    the file system cannot lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    return True


def owner_alive(owner: Path) -> bool:
    """Whether the ingest that wrote this owner file is still running (see the module doc)."""
    try:
        fd = os.open(owner, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        locked = _try_lock(fd)
    finally:
        os.close(fd)  # releases the lock if we took it
    if locked is not None:
        return not locked
    info = _owner_info(owner)
    if info.get("host") != socket.gethostname():
        return True
    return pid_alive(int(info.get("pid", 0)))


def _owner_info(owner: Path) -> dict:
    try:
        return json.loads(owner.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def live_ingests(lake_dir: Path) -> set[str]:
    """Ids of the ingests whose owner is alive right now."""
    root = Path(lake_dir) / STAGING_DIR
    if not root.is_dir():
        return set()
    return {p.name[: -len(OWNER_SUFFIX)] for p in root.glob(f"*{OWNER_SUFFIX}") if owner_alive(p)}


def remove_dead_staging(lake_dir: Path) -> set[str]:
    """Delete the staging directories (and owner files) of dead ingests; return the live ids.

    A directory is listed before its owner is checked, and an ingest creates its owner file
    before its directory and removes it after, so a live ingest's directory is never removed.
    """
    root = Path(lake_dir) / STAGING_DIR
    if not root.is_dir():
        return set()
    live: set[str] = set()
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.endswith(_CLAIMING_SUFFIX):
            # a claim that died between creating and renaming its owner file
            if time.time() - _mtime(entry) > _CLAIMING_MAX_AGE_S and not owner_alive(entry):
                entry.unlink(missing_ok=True)
            continue
        ingest_id = name[: -len(OWNER_SUFFIX)] if name.endswith(OWNER_SUFFIX) else name
        if ingest_id in live:
            continue
        owner = root / f"{ingest_id}{OWNER_SUFFIX}"
        if owner_alive(owner):
            live.add(ingest_id)
            continue
        info = _owner_info(owner)
        target = root / ingest_id
        if target.exists():
            logger.info(
                "removing staging of dead ingest %s (pid %s on %s, started %s)",
                ingest_id,
                info.get("pid", "?"),
                info.get("host", "?"),
                info.get("started", "?"),
            )
            shutil.rmtree(target, ignore_errors=True)
        owner.unlink(missing_ok=True)
    return live


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()
