"""The lake and the published tables on an object store: a real SeaweedFS S3 server.

One data directory runs the whole pipeline with `RECPIPE_OBJECT_STORE` set; a second, empty
data directory (another machine, sharing only the store and the model registry) pulls the
lake from the store, scores and publishes. Readers follow the store's CURRENT with DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from ops_helpers import run_cli
from recs_helpers import published_rows
from store_helpers import seaweed_s3

from recpipe.tasks.common.object_store import duckdb_connection
from recpipe.tasks.ingest.event_lake import MANIFEST_NAME, read_manifest
from recpipe.tasks.serving.published_mirror import (
    RECS_PREFIX,
    mirrored_version,
    stored_current,
    stored_version_glob,
)
from recpipe.tasks.serving.recommendation_publishing import current_version

pytestmark = pytest.mark.slow
KEEP = ["user_id", "rank", "item_id", "score", "source"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweed_s3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def _stored_rows(store, version: str) -> pd.DataFrame:
    with duckdb_connection(store) as con:
        df = con.sql(f"select * from read_parquet('{stored_version_glob(store, version)}')").df()
    return df.sort_values(["user_id", "rank"]).reset_index(drop=True)


def test_run_keeps_lake_and_tables_on_the_store_and_a_second_machine_publishes_from_it(
    s3, tiny_shop, tmp_path
):
    env = s3.env("shop1")
    first = tmp_path / "first"
    run_cli(
        "run", "--events", str(tiny_shop / "events"), "--items", str(tiny_shop / "items.parquet"),
        "--data-dir", str(first), cwd=tmp_path, env=env,
    )  # fmt: skip
    store = s3.store("shop1")

    # the lake: every file the manifest names, and the manifest itself, are on the store
    manifest = json.loads((first / "lake" / MANIFEST_NAME).read_text())
    assert json.loads(store.read_text(f"lake/{MANIFEST_NAME}")) == manifest
    named = {f for r in read_manifest(first / "lake").ingests for f in r.files}
    assert named and {f"lake/{f}" for f in named} <= store.listed("lake")

    # the model artifacts: the experiment keeps them on the store, none under the data directory
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(f"sqlite:///{first / 'mlflow.db'}").get_experiment_by_name("recpipe")
    assert exp.artifact_location == "s3://recpipe/shop1/mlflow-artifacts"
    artifacts = store.listed("mlflow-artifacts")
    assert any(p.endswith(".lgb") for p in artifacts), sorted(artifacts)[:20]
    assert (
        not list((first / "artifacts").rglob("*.lgb")) if (first / "artifacts").exists() else True
    )

    # the published table: CURRENT names the local current version; its rows read back by DuckDB
    version, local = published_rows(first)
    assert stored_current(store) == version
    pd.testing.assert_frame_equal(_stored_rows(store, version)[KEEP], local[KEEP])

    # another machine: an empty data directory, the same store and model registry
    second = tmp_path / "second"
    out = run_cli(
        "recommend", "--data-dir", str(second), cwd=tmp_path,
        env=env | {"RECPIPE_MLFLOW_TRACKING_URI": f"sqlite:///{first / 'mlflow.db'}"},
    )  # fmt: skip
    assert "published" in out
    assert (
        read_manifest(second / "lake").fingerprints()
        == read_manifest(first / "lake").fingerprints()
    )
    version2 = current_version(second / "recommendations")
    assert version2 != version and stored_current(store) == version2
    pd.testing.assert_frame_equal(_stored_rows(store, version2)[KEEP], local[KEEP])


def test_a_failed_pointer_write_leaves_readers_on_the_previous_complete_version(
    s3, tmp_path, monkeypatch
):
    from store_helpers import ACCESS_KEY, SECRET_KEY

    from recpipe.settings import StoreConfig
    from recpipe.tasks.common.object_store import ObjectStore

    cfg = StoreConfig(f"s3://{s3.bucket}/atomic", s3.endpoint_url, ACCESS_KEY, SECRET_KEY)
    recs = tmp_path / "recommendations"
    for n, version in enumerate(
        ("v=20260101T000000000000-aaaaaa", "v=20260102T000000000000-bbbbbb")
    ):
        (recs / version).mkdir(parents=True)
        pd.DataFrame({"user_id": [1, 2], "rank": [1, 1], "item_id": [n, n]}).to_parquet(
            recs / version / "part-0000.parquet"
        )
    first = mirrored_version(recs, "v=20260101T000000000000-aaaaaa", cfg)
    assert first.files == 1
    real_write = ObjectStore.write_text

    def pointer_fails(self, rel, text):
        if rel.endswith("CURRENT"):
            raise OSError("injected: the PUT of CURRENT failed")
        return real_write(self, rel, text)

    monkeypatch.setattr(ObjectStore, "write_text", pointer_fails)
    with pytest.raises(OSError, match="injected"):
        mirrored_version(recs, "v=20260102T000000000000-bbbbbb", cfg)
    store = s3.store("atomic")
    assert stored_current(store) == "v=20260101T000000000000-aaaaaa"
    assert _stored_rows(store, stored_current(store))["item_id"].tolist() == [0, 0]
    assert f"{RECS_PREFIX}/v=20260102T000000000000-bbbbbb/part-0000.parquet" in store.listed(
        RECS_PREFIX
    )  # uploaded, but not published: no reader follows a pointer to it


def test_a_store_whose_bucket_is_missing_is_refused_with_its_url(s3, tmp_path, tiny_shop):
    env = s3.env("x") | {"RECPIPE_OBJECT_STORE": "s3://no-such-bucket/shop"}
    import subprocess
    import sys

    from ops_helpers import clean_env

    out = subprocess.run(
        [str(Path(sys.executable).parent / "recpipe"), "ingest", "--events",
         str(tiny_shop / "events"), "--data-dir", str(tmp_path / "d")],
        env=clean_env(**env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0
    assert "s3://no-such-bucket/shop" in out.stderr + out.stdout
    assert "does not exist" in out.stderr + out.stdout
