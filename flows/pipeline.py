"""The whole pipeline as one parent flow: ingest -> features -> train -> recommend."""

from __future__ import annotations

from prefect import flow

from recpipe.flows.data_dir_writer import one_writer
from recpipe.flows.ingest import ingest_flow
from recpipe.flows.recommend import recommend_flow
from recpipe.flows.run_reports import failure_report
from recpipe.flows.train import train_flow
from recpipe.params import RunParams


@flow(name="run", log_prints=True, on_failure=[failure_report])
@one_writer("run")
def run_flow(params: RunParams) -> dict:
    """Land the logs, train and evaluate a ranker, publish recommendations with the champion."""
    shared = {"data_dir": params.data_dir, "as_of": params.as_of}
    ingest = ingest_flow(params.ingest_params())
    train = train_flow(params.train.model_copy(update=shared))
    recs = recommend_flow(params.recommend.model_copy(update=shared))
    return {"ingest": ingest.as_dict(), "train": train, "recommend": recs}
