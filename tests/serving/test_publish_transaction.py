"""The publish transaction: a version that fails before or during its checks never stays on disk
and never becomes current."""

from __future__ import annotations

import pytest

from recpipe.errors import PublishError
from recpipe.tasks.serving.recommendation_publishing import (
    checked_version,
    current_version,
    pending_version,
)


def test_a_failing_block_removes_its_version(tmp_path):
    with pytest.raises(RuntimeError, match="shard crashed"):
        with pending_version(tmp_path) as (version, path):
            (path / "part-0000.parquet").write_bytes(b"partial")
            raise RuntimeError("shard crashed")
    assert not list(tmp_path.glob("v=*"))
    assert current_version(tmp_path) is None


def test_an_interrupt_also_removes_its_version(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with pending_version(tmp_path) as (version, path):
            raise KeyboardInterrupt
    assert not (tmp_path / version).exists()


def test_a_version_without_files_fails_its_checks_and_is_removed(tmp_path):
    with pytest.raises(PublishError, match="no part files"):
        with pending_version(tmp_path) as (version, _):
            checked_version(tmp_path, version, tmp_path / "wh.duckdb", [], 20, 1, retention=5)
    assert not (tmp_path / version).exists() and current_version(tmp_path) is None


def test_a_successful_block_keeps_its_version(tmp_path):
    with pending_version(tmp_path) as (version, path):
        pass
    assert path.is_dir() and path.name == version
