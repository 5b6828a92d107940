"""Per-stage wall time, CPU time, peak RSS and row counts, for `recpipe bench`.

A stage is a `with stage("ranker") as s:` block; `s.rows_in` / `s.rows_out` may be set inside.
Nothing is measured unless `RECPIPE_STAGE_LOG` names a file: then each stage appends one JSON
line to it when it ends, from whichever process ran it (a scoring worker writes its shard's
line itself), so one file holds the whole run. Lines are short single `write`s to a file
opened in append mode, so lines of concurrent processes do not interleave.

Peak RSS is this process's high-water mark during the stage: Linux's `VmHWM`, reset at the
stage's start through `/proc/self/clear_refs`. A stage inside another passes the peak it saw
on to the outer one, so the outer stage's peak stays right. A stage run on a side thread
(`thread=True`, e.g. the data-quality suite beside the ingest) reports that thread's own CPU
time and no peak, since memory is shared by the threads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STAGE_LOG_ENV = "RECPIPE_STAGE_LOG"

_open_stages = threading.local()


@dataclass
class StageRecord:
    name: str
    rows_in: int | None = None
    rows_out: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float | None = None
    depth: int = 0
    parent: str | None = None
    part: str | None = None
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)


def stage_log_path() -> Path | None:
    value = os.environ.get(STAGE_LOG_ENV)
    return Path(value) if value else None


@contextmanager
def stage(
    name: str, rows_in: int | None = None, part: str | None = None, thread: bool = False
) -> Iterator[StageRecord]:
    """Measure the block as stage `name` (of `part`, e.g. a snapshot or shard); a no-op unless
    RECPIPE_STAGE_LOG is set."""
    record = StageRecord(name, rows_in=rows_in, part=part)
    path = stage_log_path()
    if path is None:
        yield record
        return
    stack = _stack()
    record.depth = len(stack)
    record.parent = stack[-1].record.name if stack else None
    if stack and not thread:
        stack[-1].peak_kb = max(stack[-1].peak_kb, _hwm_kb())  # before this stage resets it
    frame = _Frame(record, thread)
    if not thread:
        _reset_hwm()
        stack.append(frame)
    cpu0 = time.thread_time() if thread else time.process_time()
    wall0 = time.perf_counter()
    try:
        yield record
    finally:
        record.wall_s = round(time.perf_counter() - wall0, 4)
        record.cpu_s = round((time.thread_time() if thread else time.process_time()) - cpu0, 4)
        if not thread:
            stack.pop()
            frame.peak_kb = max(frame.peak_kb, _hwm_kb())
            record.peak_rss_mb = round(frame.peak_kb / 1024, 1)
            if stack:
                stack[-1].peak_kb = max(stack[-1].peak_kb, frame.peak_kb)
        _append(path, record)


def read_stage_log(path: Path) -> list[StageRecord]:
    """The records of a stage log, in the order they ended."""
    if not Path(path).exists():
        return []
    return [StageRecord(**json.loads(line)) for line in Path(path).read_text().splitlines() if line]


@dataclass
class _Frame:
    record: StageRecord
    thread: bool
    peak_kb: int = 0


def _stack() -> list[_Frame]:
    if not hasattr(_open_stages, "stack"):
        _open_stages.stack = []
    return _open_stages.stack


def _hwm_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; never reset


def _reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux, or not allowed: peaks are then since the process started


def _append(path: Path, record: StageRecord) -> None:
    line = (json.dumps(asdict(record)) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
