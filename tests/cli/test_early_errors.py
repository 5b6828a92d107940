"""User errors a command can see before it starts Prefect fail in one line, exit 2, at once:
a bad option value, a malformed environment variable, a missing file, an unwritable data
directory, a cutoff before the first event, a data directory another run holds. None of them
starts Prefect (no `.prefect` under the data directory) or changes the data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from lock_helpers import hold_in_subprocess

from recpipe.contract import EVENT_TYPES
from recpipe.tasks.ingest.event_lake import read_manifest
from recpipe.tasks.ingest.ingested_events import ingested_events

RECPIPE = Path(sys.executable).parent / "recpipe"
SLOW = pytest.mark.slow  # one case of each kind stays in the fast lane


def recpipe(*args: str, cwd: Path, env: dict | None = None, unprivileged: bool = False):
    """(completed process, seconds) of one CLI call with a clean environment. `unprivileged`
    runs it as user `nobody` when the tests run as root (root may write anywhere), with the
    system's Python 3.11 and this environment's packages (root's own Python is not readable)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECPIPE_", "PREFECT_HOME", "PREFECT_API", "MLFLOW_TRACKING"))
    }
    cmd, user = [str(RECPIPE), *args], None
    if unprivileged and os.getuid() == 0:
        user, site = 65534, sysconfig.get_paths()["purelib"]
        code = (
            f"import site, sys; site.addsitedir({site!r}); sys.argv = ['recpipe', *sys.argv[1:]]; "
            "from recpipe.cli import main; main()"
        )
        cmd = ["/usr/bin/python3.11", "-c", code, *args]
        clean["HOME"] = str(cwd)
    t0 = time.monotonic()
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=clean | (env or {}), cwd=cwd, timeout=120,
        user=user,
    )  # fmt: skip
    return out, time.monotonic() - t0


def one_line(out: subprocess.CompletedProcess, command: str) -> str:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"recpipe {command}: ")
    return lines[0]


@pytest.fixture
def events_csv(tmp_path) -> Path:
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [10, 11, 10],
            "event_type": ["view", "cart", "purchase"],
            "ts": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 10:00", "2024-03-03 10:00"]),
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def landed(tmp_path, events_csv) -> Path:
    """A data directory whose lake holds the three events (landed without Prefect)."""
    data = tmp_path / "data"
    ingested_events(events_csv, data / "lake", list(EVENT_TYPES), now=pd.Timestamp("2025-01-01"))
    return data


def test_a_malformed_environment_variable_is_named(tmp_path, events_csv):
    data = tmp_path / "data"
    out, seconds = recpipe(
        "ingest", "--events", str(events_csv), "--data-dir", str(data), cwd=tmp_path,
        env={"RECPIPE_EVENT_WEIGHTS": '{"view": 1,'},
    )  # fmt: skip
    line = one_line(out, "ingest")
    assert "RECPIPE_EVENT_WEIGHTS" in line and '"purchase": 8' in line
    assert seconds < 15 and not data.exists()

    out, _ = recpipe(
        "ingest", "--events", str(events_csv), "--data-dir", str(data), cwd=tmp_path,
        env={"RECPIPE_EVENT_WEIGHTS": '{"view": -1}'},
    )  # fmt: skip
    assert "RECPIPE_EVENT_WEIGHTS" in one_line(out, "ingest") and ">= 0" in out.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "--max-bad-row-share", "5"], "--max-bad-row-share: Input should be less"),
        pytest.param(
            ["recommend", "--top-k", "0"],
            "--top-k: Input should be greater than or equal to 1",
            marks=SLOW,
        ),
        pytest.param(
            ["train", "--factors", "-3"], "--factors: Input should be greater", marks=SLOW
        ),
        pytest.param(["ingest", "--wait", "-1"], "--wait must be >= 0", marks=SLOW),
        pytest.param(
            ["features", "--snapshot", "bogus"],
            "--snapshot: 'bogus' is not one of 'serve', 'train'",
            marks=SLOW,
        ),
        pytest.param(
            ["recommend", "--repurchase", "x"],
            "--repurchase: 'x' is not one of 'auto', 'exclude'",
            marks=SLOW,
        ),
        pytest.param(
            ["recommend", "--model-version", "../../x"],
            "'../../x' is neither a registered version",
            marks=SLOW,
        ),
    ],
)
def test_an_option_out_of_range_names_the_option(tmp_path, events_csv, args, expected):
    data = tmp_path / "data"
    out, seconds = recpipe(
        *args, *(["--events", str(events_csv)] if args[0] == "ingest" else []),
        "--data-dir", str(data), cwd=tmp_path,
    )  # fmt: skip
    assert expected in one_line(out, args[0])
    assert seconds < 15 and not (data / ".prefect").exists() and not (data / "lake").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ingest", "--events", "nope/*.csv"], "nope/*.csv: no event files found"),
        pytest.param(
            ["ingest", "--events", "missing.parquet"], "missing.parquet: no such file", marks=SLOW
        ),
        pytest.param(
            ["ingest", "--events", "EVENTS", "--items", "items.csv"],
            "--items items.csv does not",
            marks=SLOW,
        ),
        pytest.param(
            ["run", "--events", "EVENTS", "--users", "."], "--users . is a directory", marks=SLOW
        ),
        pytest.param(
            ["recommend", "--exclude-items", "x.txt"],
            "--exclude-items x.txt does not exist",
            marks=SLOW,
        ),
        pytest.param(
            ["import", "generic", "nope.csv", "out"], "SOURCE nope.csv does not exist", marks=SLOW
        ),
        pytest.param(
            ["generate", "--out", "EVENTS"], "events.csv is a file, not a directory", marks=SLOW
        ),
    ],
)
def test_a_missing_input_file_is_named(tmp_path, events_csv, args, expected):
    args = [str(events_csv) if a == "EVENTS" else a for a in args]
    data = [] if args[0] in ("import", "generate") else ["--data-dir", str(tmp_path / "data")]
    out, seconds = recpipe(*args, *data, cwd=tmp_path)
    assert expected in one_line(out, args[0])
    assert seconds < 15 and not (tmp_path / "data" / ".prefect").exists()


@pytest.mark.parametrize(
    "command",
    ["features", pytest.param("train", marks=SLOW), pytest.param("recommend", marks=SLOW)],
)
def test_a_cutoff_before_the_first_event_fails_before_any_work(landed, tmp_path, command):
    before = read_manifest(landed / "lake")
    out, seconds = recpipe(
        command, "--as-of", "2024-02-01", "--data-dir", str(landed), cwd=tmp_path
    )
    line = one_line(out, command)
    assert "--as-of 2024-02-01 00:00:00 is not after the lake's first event" in line
    assert "2024-03-01 10:00:00" in line
    assert seconds < 15
    assert not (landed / ".prefect").exists() and not (landed / "warehouse.duckdb").exists()
    assert not (landed / "recommendations").exists()
    assert read_manifest(landed / "lake") == before


def test_a_command_on_an_empty_lake_says_so(tmp_path):
    out, _ = recpipe("recommend", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert "the lake holds no events; run `recpipe ingest` first" in one_line(out, "recommend")


def test_a_data_directory_another_run_holds_fails_naming_the_holder(landed, tmp_path, events_csv):
    holder = hold_in_subprocess(landed, 60, command="train")
    try:
        out, seconds = recpipe(
            "ingest", "--events", str(events_csv), "--data-dir", str(landed), cwd=tmp_path
        )
        line = one_line(out, "ingest")
        assert f"is in use by `train` (pid {holder.pid} on" in line and "--wait" in line
        assert seconds < 15 and not (landed / ".prefect").exists()
    finally:
        holder.kill()
        holder.wait()


def test_an_unwritable_data_directory_fails_at_once(events_csv):
    root = Path(tempfile.mkdtemp(prefix="recpipe-ro-", dir="/tmp"))  # reachable for `nobody`
    try:
        os.chmod(root, 0o755)
        shutil.copy(events_csv, root / "events.csv")
        os.chmod(root / "events.csv", 0o644)
        (root / "data").mkdir()
        os.chmod(root / "data", 0o555)
        probe, _ = recpipe("--help", cwd=root, unprivileged=True)
        assert probe.returncode == 0, probe.stderr
        for data in (root / "data", root / "data" / "sub"):
            out, seconds = recpipe(
                "ingest", "--events", "events.csv", "--data-dir", str(data), cwd=root,
                unprivileged=True,
            )  # fmt: skip
            line = one_line(out, "ingest")
            assert str(data) in line and ("not writable" in line or "cannot be created" in line)
            assert seconds < 15
        assert os.listdir(root / "data") == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_a_failing_ingest_prints_its_reason_once_without_prefect_tracebacks(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,event_type,ts\n1,2,view,2024-01-01\n1,2,bogus,2024-01-01\n")
    data = tmp_path / "data"
    out, _ = recpipe("ingest", "--events", str(bad), "--data-dir", str(data), cwd=tmp_path)
    line = one_line(out, "ingest")
    assert "bad.csv: 1 of 2 rows (50.0%) are bad" in line and "unknown_event_type" in line
    assert "Traceback" not in out.stdout + out.stderr
    assert (data / ".prefect").exists()  # this one did reach Prefect: the failure is the flow's


def test_a_data_directory_with_a_question_mark_is_refused_by_name(tmp_path, events_csv):
    data = tmp_path / "why?"
    out, _ = recpipe("ingest", "--events", str(events_csv), "--data-dir", str(data), cwd=tmp_path)
    assert "a '?' in the path" in one_line(out, "ingest") and not data.exists()
