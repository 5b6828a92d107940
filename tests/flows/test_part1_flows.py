"""Ingest and feature flows as real Prefect flow runs on the tiny shop."""

from __future__ import annotations

import duckdb
import pytest

pytestmark = pytest.mark.slow


def test_ingest_and_features_flows(prefect_server, tiny_shop, tmp_path):
    from prefect.client.orchestration import get_client

    from recpipe.flows.features import features_flow
    from recpipe.flows.ingest import ingest_flow
    from recpipe.params import FeatureParams, IngestParams

    data = tmp_path / "data"
    summary = ingest_flow(
        IngestParams(
            events=str(tiny_shop / "events"),
            items=str(tiny_shop / "items.parquet"),
            users=str(tiny_shop / "users.parquet"),
            data_dir=str(data),
        )
    )
    assert summary.published and summary.rows_landed > 1000
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert "ingest-summary" in keys

    result = features_flow(FeatureParams(data_dir=str(data)))
    assert result.snapshot == "serve" and all(n > 0 for n in result.rows.values())
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        n_users = con.sql("select count(*) from serve.user_features").fetchall()[0][0]
        as_of = con.sql("select max(as_of) from serve.item_features").fetchall()[0][0]
    assert n_users > 50
    assert as_of == result.as_of
