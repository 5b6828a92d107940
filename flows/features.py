"""Features flow: the lake -> point-in-time feature tables in warehouse.duckdb."""

from __future__ import annotations

from prefect import flow, task

from recpipe.params import FeatureParams
from recpipe.settings import Settings
from tasks.feature_tables import FeatureConfig, FeatureTablesResult, feature_tables
from tasks.lake_cutoffs import default_as_of

feature_tables_task = task(feature_tables, name="feature_tables")
default_as_of_task = task(default_as_of, name="default_as_of")


@flow(name="features", log_prints=True)
def features_flow(params: FeatureParams = FeatureParams()) -> FeatureTablesResult:
    """Build every feature table of one snapshot as of one cutoff."""
    settings = Settings(**({"data_dir": params.data_dir} if params.data_dir else {}))
    as_of = params.as_of or default_as_of_task(settings.lake_dir)
    cfg = FeatureConfig(event_weights=settings.event_weights,
                        half_life_days=params.half_life_days or settings.half_life_days,
                        short_days=params.short_days, covis_days=params.covis_days,
                        covis_top_n=params.covis_top_n)
    result = feature_tables_task(settings.lake_dir, settings.warehouse_path, as_of,
                                 params.snapshot, cfg)
    print(f"features as of {as_of} in {result.warehouse} schema {result.snapshot}: {result.rows}")
    return result
