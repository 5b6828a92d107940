"""Ingest flow: raw files -> validated lake (events, quarantine, items, users)."""

from __future__ import annotations

from prefect import flow, task

from recpipe.params import IngestParams
from recpipe.settings import Settings
from tasks.ingested_events import IngestSummary, ingested_events
from tasks.run_reports import markdown_artifact

ingested_events_task = task(ingested_events, name="ingested_events")
ingest_report_task = task(markdown_artifact, name="ingest_report")


@flow(name="ingest", log_prints=True)
def ingest_flow(params: IngestParams = IngestParams()) -> IngestSummary:
    """Validate raw events (and optional items/users) and land the good rows in the lake."""
    settings = Settings(**({"data_dir": params.data_dir} if params.data_dir else {}))
    summary = ingested_events_task(
        params.events, settings.lake_dir, settings.event_types, items=params.items,
        users=params.users,
        max_bad_row_share=params.max_bad_row_share if params.max_bad_row_share is not None
        else settings.max_bad_row_share,
        min_ts=params.min_ts)
    print(summary.markdown())
    ingest_report_task("ingest-summary", summary.markdown(), "rows in, landed, quarantined by reason")
    return summary
