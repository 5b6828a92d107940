"""The CLI turns recpipe's own errors into one line and exit code 2; --debug shows the traceback."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import recpipe.errors as errors
from recpipe.cli import app
from recpipe.errors import RecpipeError

RECPIPE = Path(sys.executable).parent / "recpipe"


def recpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPIPE_")}
    return subprocess.run(
        [str(RECPIPE), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_every_error_of_the_project_shares_one_base():
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert len(classes) >= 7
    assert all(issubclass(c, RecpipeError) for c in classes)


def test_recs_on_an_empty_data_dir_prints_one_line_and_exits_2(tmp_path):
    out = recpipe("recs", "42", "--data-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("recpipe recs: ") and "nothing published yet" in lines[0]
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback(tmp_path):
    out = recpipe("--debug", "recs", "42", "--data-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert out.returncode != 0
    assert "NoDataError" in out.stderr and "nothing published yet" in out.stderr
    assert len(out.stderr.strip().splitlines()) > 1


def test_a_bad_value_names_itself(tmp_path):
    out = recpipe("generate", "--preset", "huge", "--out", str(tmp_path / "shop"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "recpipe generate: unknown preset 'huge'; choose one of ['demo', 'large', 'medium', 'small', 'tiny']"
    )


def test_every_command_is_wrapped():
    """A command added without the error wrapper would print tracebacks for user errors."""
    for cmd in app.registered_commands:
        assert hasattr(cmd.callback, "__wrapped__"), cmd.callback.__name__


@pytest.mark.parametrize("error", [errors.IngestError, errors.PublishError, errors.NoDataError])
def test_errors_keep_their_builtin_meaning(error):
    assert issubclass(error, Exception) and issubclass(error, RecpipeError)
