"""One writer per data directory: a second writer fails naming the holder or waits for it; the
lock dies with its holder; sub-flows of the holder re-enter it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from lock_helpers import hold_in_subprocess

from recpipe.errors import DataDirBusyError
from recpipe.tasks.common.data_dir_lock import LOCK_NAME, lock_holder, writer_lock


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    holder = hold_in_subprocess(tmp_path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(DataDirBusyError) as err, writer_lock(tmp_path, "recommend"):
            pass
        assert time.monotonic() - t0 < 2
        message = str(err.value)
        assert f"pid {holder.pid}" in message and "`train`" in message
        assert str(tmp_path) in message and "--wait" in message
        assert lock_holder(tmp_path)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_writer_runs_after_the_holder(tmp_path):
    holder = hold_in_subprocess(tmp_path, 1.5)
    try:
        t0 = time.monotonic()
        with writer_lock(tmp_path, "ingest", wait_seconds=30):
            waited = time.monotonic() - t0
            assert lock_holder(tmp_path)["pid"] == os.getpid()
        assert 1.0 < waited < 30  # the holder kept it ~1.5 s after saying so
    finally:
        holder.kill()
        holder.wait()


def test_waiting_gives_up_after_the_timeout(tmp_path):
    holder = hold_in_subprocess(tmp_path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(DataDirBusyError, match="after waiting 1s"):
            with writer_lock(tmp_path, "ingest", wait_seconds=1):
                pass
        assert 1 <= time.monotonic() - t0 < 5
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_dies_with_a_killed_holder(tmp_path):
    holder = hold_in_subprocess(tmp_path, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # the stale file blocks nobody
    assert lock_holder(tmp_path) is None
    with writer_lock(tmp_path, "ingest"):
        assert lock_holder(tmp_path)["command"] == "ingest"


def test_sub_flows_of_the_holder_re_enter_and_release_last(tmp_path):
    with writer_lock(tmp_path, "run"):
        with writer_lock(tmp_path / ".", "ingest"):  # same directory, another spelling
            pass
        assert lock_holder(tmp_path)["command"] == "run"
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from recpipe.tasks.common.data_dir_lock import writer_lock\n"
                f"with writer_lock({str(tmp_path)!r}, 'x'): pass",
            ],
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0 and "DataDirBusyError" in probe.stderr
    assert lock_holder(tmp_path) is None
