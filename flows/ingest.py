"""Ingest flow: raw files -> validated lake (events, quarantine, items, users)."""

from __future__ import annotations

from prefect import flow

from recpipe.configs import ingest_settings
from recpipe.flows.data_dir_writer import one_writer
from recpipe.flows.run_reports import failure_report
from recpipe.flows.steps import (
    ingested_events_task,
    markdown_artifact_task,
    pulled_lake_task,
    pushed_lake_task,
)
from recpipe.params import IngestParams
from recpipe.tasks.ingest.ingested_events import IngestSummary


@flow(name="ingest", log_prints=True, on_failure=[failure_report])
@one_writer("ingest")
def ingest_flow(params: IngestParams = IngestParams()) -> IngestSummary:
    """Validate raw events (and optional items/users) and land the good rows in the lake."""
    settings = ingest_settings(params)
    store = settings.store_config()
    pulled_lake_task(settings.lake_dir, store)  # files the store has landed are not re-landed
    summary = ingested_events_task(
        params.events,
        settings.lake_dir,
        settings.event_types,
        items=params.items,
        users=params.users,
        max_bad_row_share=settings.max_bad_row_share,
        min_ts=settings.min_ts,
        event_map=settings.event_map,
    )
    pushed_lake_task(settings.lake_dir, store)
    print(summary.markdown())
    markdown_artifact_task(
        "ingest-summary", summary.markdown(), "rows in, landed, quarantined by reason"
    )
    return summary
