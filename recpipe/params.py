"""Typed flow parameters: the Prefect UI renders each model as a form for a manual run.

`None` means "take it from Settings" (environment `RECPIPE_*`), so deployments and the CLI
share one source of defaults.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class IngestParams(BaseModel):
    """What to ingest into the lake."""

    events: str | None = Field(None, description="Event file, directory or glob (Parquet or CSV).")
    items: str | None = Field(None, description="Optional item catalogue file.")
    users: str | None = Field(None, description="Optional users file (users to score without events).")
    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    max_bad_row_share: float | None = Field(
        None, ge=0, le=1, description="Fail the ingest above this share of bad rows (default 1%).")
    min_ts: datetime = Field(datetime(2000, 1, 1), description="Events before this are quarantined.")


class FeatureParams(BaseModel):
    """Cutoff and windows of the point-in-time feature tables."""

    data_dir: str | None = Field(None, description="Data directory; default RECPIPE_DATA_DIR or ./data.")
    as_of: datetime | None = Field(
        None, description="Cutoff (UTC): events at or after it are invisible. Default: just after the last event.")
    snapshot: str = Field("serve", pattern="^(serve|train|eval)$", description="Schema to write.")
    half_life_days: float | None = Field(None, gt=0, description="Decay half-life; default from settings.")
    short_days: float = Field(7.0, gt=0, description="Short-term window of the drift signal.")
    covis_days: float = Field(30.0, gt=0, description="Window of co-visitation pairs.")
    covis_top_n: int = Field(50, ge=1, le=1000, description="Neighbours kept per item.")
