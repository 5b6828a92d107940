"""What one training run hands to the registry: model files, parameters, metrics, tags, reports."""

from __future__ import annotations

from pathlib import Path

from recpipe.tasks.registry.model_registry import TrainedBundle, flatten_params


def training_bundle(
    ranker,
    serve_embeddings,
    params: dict,
    record,
    report_files: list[str],
    baseline: str | None = None,
    fallback_reason: str = "",
) -> TrainedBundle:
    """The bundle to log and register: the ranker's booster (or, when no ranker could be trained,
    the name of the baseline served instead and why), the serve snapshot's ALS factors, every
    parameter flattened (`als.factors`, `candidates.n_mf` ...), metrics and tags."""
    return TrainedBundle(
        booster_path=Path(ranker.path) if ranker is not None else None,
        mf_path=Path(serve_embeddings.path),
        feature_names=list(ranker.importance) if ranker is not None else [],
        params=flatten_params(params),
        metrics=record.metrics,
        tags=record.tags,
        artifacts=[Path(f) for f in report_files],
        baseline=None if ranker is not None else baseline,
        fallback_reason="" if ranker is not None else fallback_reason,
    )
