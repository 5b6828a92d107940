"""Every pure function of `tasks/` wrapped once as a Prefect task (names, caching, retries).

Flows import their steps from here, so a step means the same thing in every flow.
"""

from __future__ import annotations

from prefect import task

from tasks.als_embeddings import als_embeddings_file
from tasks.champion_comparison import champion_score
from tasks.feature_tables import feature_tables
from tasks.ingested_events import ingested_events
from tasks.lake_cutoffs import default_as_of, lake_fingerprint
from tasks.model_registry import log_training_run, promotion_gate
from tasks.offline_evaluation import model_evaluation
from tasks.ranker_model import ranker_model_file
from tasks.ranker_training_set import ranker_training_set_file
from tasks.ranking_labels import interaction_labels
from tasks.run_reports import markdown_artifact
from tasks.task_cache import output_path_cache_key
from tasks.training_reports import training_record, training_report_files

ingested_events_task = task(ingested_events, name="ingested_events")
default_as_of_task = task(default_as_of, name="default_as_of")
lake_fingerprint_task = task(lake_fingerprint, name="lake_fingerprint")
feature_tables_task = task(feature_tables, name="feature_tables", task_run_name="feature_tables[{snapshot}]")
interaction_labels_task = task(interaction_labels, name="interaction_labels",
                               task_run_name="interaction_labels[{snapshot}]")
als_embeddings_task = task(als_embeddings_file, name="als_embeddings", task_run_name="als_embeddings[{snapshot}]",
                           cache_key_fn=output_path_cache_key, persist_result=True)
ranker_training_set_task = task(ranker_training_set_file, name="ranker_training_set",
                                cache_key_fn=output_path_cache_key, persist_result=True)
ranker_model_task = task(ranker_model_file, name="ranker_model",
                         cache_key_fn=output_path_cache_key, persist_result=True)
model_evaluation_task = task(model_evaluation, name="model_evaluation")
champion_score_task = task(champion_score, name="champion_score")
training_report_task = task(training_report_files, name="training_report_files")
training_record_task = task(training_record, name="training_record")
registered_run_task = task(log_training_run, name="mlflow_run")
promotion_gate_task = task(promotion_gate, name="promotion_gate")
markdown_artifact_task = task(markdown_artifact, name="markdown_artifact")

from tasks.recommendation_publishing import (  # noqa: E402
    discard_version,
    new_version,
    published_version,
    recommendation_checks,
)
from tasks.scoring_model import exclusion_list, scoring_model  # noqa: E402
from tasks.scoring_scope import scoring_scope  # noqa: E402
from tasks.user_recommendations import user_recommendations  # noqa: E402

scoring_model_task = task(scoring_model, name="scoring_model")
exclusion_list_task = task(exclusion_list, name="exclusion_list")
scoring_scope_task = task(scoring_scope, name="scoring_scope")
new_version_task = task(new_version, name="new_version")
user_recommendations_task = task(user_recommendations, name="user_recommendations",
                                 task_run_name="user_recommendations[shard {shard}]")
recommendation_checks_task = task(recommendation_checks, name="recommendation_checks")
published_version_task = task(published_version, name="published_version")
discard_version_task = task(discard_version, name="discard_version")
