"""Features flow: the lake -> point-in-time feature tables in warehouse.duckdb."""

from __future__ import annotations

from prefect import flow

from recpipe.configs import feature_config, settings_for
from recpipe.flows.data_dir_writer import one_writer
from recpipe.flows.run_reports import failure_report
from recpipe.flows.steps import feature_tables_task, run_cutoff_task
from recpipe.params import FeatureParams
from recpipe.tasks.features.feature_tables import FeatureTablesResult


@flow(name="features", log_prints=True, on_failure=[failure_report])
@one_writer("features")
def features_flow(params: FeatureParams = FeatureParams()) -> FeatureTablesResult:
    """Build every feature table of one snapshot as of one cutoff."""
    settings = settings_for(params.data_dir)
    as_of = run_cutoff_task(settings.lake_dir, params.as_of)
    result = feature_tables_task(
        settings.lake_dir, settings.warehouse_path, as_of, params.snapshot, feature_config(settings)
    )
    print(f"features as of {as_of} in {result.warehouse} schema {result.snapshot}: {result.rows}")
    return result
