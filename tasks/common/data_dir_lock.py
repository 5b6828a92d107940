"""One writer per data directory: an exclusive lock held for a whole ingest, features, train or
recommend run (readers need none).

The lock is `fcntl.flock` on `DATA_DIR/.recpipe.lock`, so the operating system releases it when
the holder dies, however it dies; a stale file never blocks anyone. The file names the holder
(command, pid, host, start time) for the message a second writer gets. Within one process the
lock is re-entrant: the `run` flow holds it while its ingest, train and recommend sub-flows
take it again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from recpipe.errors import DataDirBusyError, InputError

LOCK_NAME = ".recpipe.lock"
_POLL_SECONDS = 0.2
_held: dict[str, tuple[int, int]] = {}  # resolved lock path -> (fd, depth), this process
_guard = threading.Lock()


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / LOCK_NAME


def lock_holder(data_dir: Path) -> dict | None:
    """Who holds the data directory's lock (as the holder wrote it), or None when it is free."""
    path = lock_path(data_dir)
    if not path.exists():
        return None
    with _guard:
        if str(path) in _held:
            return _read_holder(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path)
    finally:
        os.close(fd)
    return None


@contextmanager
def writer_lock(data_dir: Path, command: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the data directory's writer lock for the block.

    A second writer waits up to `wait_seconds` for the holder to finish, then raises
    `DataDirBusyError` naming the holder (at once with the default 0)."""
    path = lock_path(data_dir)
    key = str(path)
    with _guard:
        if key in _held:  # re-entered by a sub-flow of the holder
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        fd = _acquire(path, command, wait_seconds)
        with _guard:
            _held[key] = (fd, 1)
    try:
        yield
    finally:
        with _guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                os.close(fd)  # releases the flock


def _acquire(path: Path, command: str, wait_seconds: float) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as exc:
        raise InputError(
            f"data directory {path.parent} is not writable ({exc.strerror}); "
            "choose another --data-dir or fix its permissions"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES):
            raise InputError(
                f"data directory {path.parent} is not writable ({exc.strerror})"
            ) from None
        raise
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(path)
                os.close(fd)
                raise DataDirBusyError(
                    _busy_message(path.parent, command, holder, wait_seconds)
                ) from None
            time.sleep(_POLL_SECONDS)
    holder = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    return fd


def _read_holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None


def _busy_message(data_dir: Path, command: str, holder: dict | None, waited: float) -> str:
    who = (
        f"`{holder.get('command')}` (pid {holder.get('pid')} on {holder.get('host')}, "
        f"since {holder.get('started')})"
        if holder
        else "another recpipe run"
    )
    waited_text = f" after waiting {waited:g}s" if waited > 0 else ""
    return (
        f"data directory {data_dir} is in use by {who}{waited_text}; {command} did not start. "
        "Wait for it to finish or pass --wait SECONDS"
    )
