"""A process holding a data directory's writer lock, for tests of a second writer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def hold_in_subprocess(data_dir: Path, seconds: float, command: str = "train") -> subprocess.Popen:
    """A process that takes the writer lock, says so on stdout, and holds it for `seconds`."""
    code = textwrap.dedent(
        f"""
        import time
        from recpipe.tasks.common.data_dir_lock import writer_lock
        with writer_lock({str(data_dir)!r}, {command!r}):
            print("held", flush=True)
            time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc
