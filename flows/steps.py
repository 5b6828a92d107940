"""Every task of `recpipe.tasks` wrapped once as a Prefect task (names, caching, retries).

Flows import their steps from here, so a step means the same thing in every flow.
"""

from __future__ import annotations

from prefect import task

from recpipe.errors import RecpipeError
from recpipe.flows.run_reports import markdown_artifact
from recpipe.flows.task_cache import output_path_cache_key
from recpipe.tasks.evaluation.champion_comparison import champion_score
from recpipe.tasks.evaluation.offline_evaluation import baseline_evaluation, model_evaluation
from recpipe.tasks.evaluation.training_reports import (
    training_record,
    training_report_files,
    training_summary,
)
from recpipe.tasks.features.feature_tables import feature_tables
from recpipe.tasks.features.ranking_labels import interaction_labels
from recpipe.tasks.features.training_windows import stacked_training_windows
from recpipe.tasks.ingest.ingested_events import ingested_events
from recpipe.tasks.ingest.lake_cutoffs import (
    default_as_of,
    first_event_ts,
    lake_fingerprint,
    run_cutoff,
)
from recpipe.tasks.ingest.lake_mirror import pulled_lake, pushed_lake
from recpipe.tasks.models.als_embeddings import als_embeddings_file
from recpipe.tasks.models.ranker_model import ranker_model_file
from recpipe.tasks.models.ranker_training_set import ranker_training_set_file
from recpipe.tasks.registry.model_registry import log_training_run, promotion_gate
from recpipe.tasks.registry.scoring_model import exclusion_list, scoring_model
from recpipe.tasks.registry.training_bundle import training_bundle
from recpipe.tasks.serving.published_mirror import mirrored_version
from recpipe.tasks.serving.recommendation_publishing import checked_version
from recpipe.tasks.serving.recommendation_summary import recommend_summary
from recpipe.tasks.serving.scoring_scope import scoring_scope
from recpipe.tasks.serving.shard_inputs import discard_shard_inputs, shard_inputs
from recpipe.tasks.serving.user_recommendations import default_list, user_recommendations


def _transient(task, task_run, state) -> bool:
    """Retry a step that talks to a server (MLflow, Prefect) unless the user has to act."""
    try:
        state.result()
    except RecpipeError:
        return False
    except Exception:
        return True
    return False


# steps that read from a tracking server: a dropped connection is worth another try
TRANSIENT_IO_RETRIES = {"retries": 2, "retry_delay_seconds": 3, "retry_condition_fn": _transient}

# ingest (and the lake's copy on the object store, when one is configured)
ingested_events_task = task(ingested_events, name="ingested_events")
pulled_lake_task = task(pulled_lake, name="pulled_lake", **TRANSIENT_IO_RETRIES)
pushed_lake_task = task(pushed_lake, name="pushed_lake", **TRANSIENT_IO_RETRIES)
markdown_artifact_task = task(
    markdown_artifact, name="markdown_artifact", retries=2, retry_delay_seconds=2
)

# features
default_as_of_task = task(default_as_of, name="default_as_of")
run_cutoff_task = task(run_cutoff, name="run_cutoff")
first_event_task = task(first_event_ts, name="first_event")
lake_fingerprint_task = task(lake_fingerprint, name="lake_fingerprint")
training_windows_task = task(stacked_training_windows, name="training_windows")
feature_tables_task = task(
    feature_tables, name="feature_tables", task_run_name="feature_tables[{snapshot}]"
)
interaction_labels_task = task(
    interaction_labels, name="interaction_labels", task_run_name="interaction_labels[{snapshot}]"
)

# models (cached on content-addressed output files)
als_embeddings_task = task(
    als_embeddings_file,
    name="als_embeddings",
    task_run_name="als_embeddings[{snapshot}]",
    cache_key_fn=output_path_cache_key,
    persist_result=True,
)
ranker_training_set_task = task(
    ranker_training_set_file,
    name="ranker_training_set",
    cache_key_fn=output_path_cache_key,
    persist_result=True,
)
ranker_model_task = task(
    ranker_model_file, name="ranker_model", cache_key_fn=output_path_cache_key, persist_result=True
)

# evaluation and registry
model_evaluation_task = task(model_evaluation, name="model_evaluation")
baseline_evaluation_task = task(baseline_evaluation, name="baseline_evaluation")
champion_score_task = task(champion_score, name="champion_score", **TRANSIENT_IO_RETRIES)
training_record_task = task(training_record, name="training_record")
training_report_task = task(training_report_files, name="training_report_files")
training_bundle_task = task(training_bundle, name="training_bundle")
registered_run_task = task(log_training_run, name="mlflow_run")
promotion_gate_task = task(promotion_gate, name="promotion_gate")
training_summary_task = task(training_summary, name="training_summary")

# serving
scoring_model_task = task(scoring_model, name="scoring_model", **TRANSIENT_IO_RETRIES)
exclusion_list_task = task(exclusion_list, name="exclusion_list")
scoring_scope_task = task(scoring_scope, name="scoring_scope")
user_recommendations_task = task(
    user_recommendations,
    name="user_recommendations",
    task_run_name="user_recommendations[shard {shard}]",
)
default_list_task = task(default_list, name="default_list")
shard_inputs_task = task(shard_inputs, name="shard_inputs")
discarded_shard_inputs_task = task(discard_shard_inputs, name="discard_shard_inputs")
checked_version_task = task(checked_version, name="checked_version")
mirrored_version_task = task(mirrored_version, name="mirrored_version", **TRANSIENT_IO_RETRIES)
recommend_summary_task = task(recommend_summary, name="recommend_summary")
