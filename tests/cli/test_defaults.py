"""One source of defaults: the CLI defers to the parameter models, which reuse the stage configs."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from recpipe.cli import app
from recpipe.params import (
    ALSParams,
    CandidateConfig,
    FeatureParams,
    RankerParams,
    RecommendParams,
    TrainParams,
    default_of,
)
from recpipe.tasks.evaluation.offline_evaluation import EvalConfig
from recpipe.tasks.models.als_embeddings import ALSEmbeddings
from recpipe.tasks.models.ranker_model import LambdaRanker
from recpipe.tasks.serving.exploration import ExploreConfig
from recpipe.tasks.serving.user_recommendations import RecommendConfig

# CLI option -> the model field whose default its help text names
HELP_DEFAULTS = {
    ("train", "horizon_days"): (TrainParams, "label_horizon_days"),
    ("train", "factors"): (ALSParams, "factors"),
    ("train", "iterations"): (ALSParams, "iterations"),
    ("train", "n_estimators"): (RankerParams, "n_estimators"),
    ("recommend", "top_k"): (RecommendParams, "top_k"),
    ("recommend", "model_version"): (RecommendParams, "model_version"),
    ("recommend", "n_shards"): (RecommendParams, "n_shards"),
    ("recommend", "shard_users"): (RecommendParams, "shard_users"),
    ("recommend", "workers"): (RecommendParams, "workers"),
    ("recommend", "explore_share"): (RecommendParams, "explore_share"),
    ("recommend", "repurchase"): (RecommendParams, "repurchase"),
    ("run", "top_k"): (RecommendParams, "top_k"),
    ("features", "snapshot"): (FeatureParams, "snapshot"),
}


def _options(command: str) -> dict:
    return {p.name: p for p in get_command(app).commands[command].params}


@pytest.mark.parametrize(("command", "option"), list(HELP_DEFAULTS))
def test_cli_options_are_not_given_by_default_and_their_help_names_the_model_default(
    command, option
):
    param = _options(command)[option]
    assert param.default is None  # "not given": the parameter model decides
    owner, field = HELP_DEFAULTS[(command, option)]
    named = re.search(r"\(default ([^ )=]+)", param.help).group(1).replace(",", "").rstrip(".")
    expected = default_of(owner, field)
    assert named == str(expected) or float(named.rstrip("%")) == float(expected), (
        command,
        option,
        param.help,
    )


def test_parameter_models_reuse_the_stage_config_fields():
    assert default_of(RecommendParams, "top_k") == default_of(RecommendConfig, "top_k")
    assert default_of(RecommendParams, "explore_share") == default_of(ExploreConfig, "share")
    assert default_of(TrainParams, "max_eval_users") == default_of(EvalConfig, "max_users")
    assert TrainParams().candidates == CandidateConfig()
    # bounds come along with the default
    with pytest.raises(ValueError):
        RecommendParams(top_k=0)


def test_model_constructors_default_to_the_parameter_models():
    assert ALSEmbeddings().factors == ALSParams().factors
    assert LambdaRanker().n_estimators == RankerParams().n_estimators
    assert LambdaRanker().compact_tolerance == RankerParams().compact_tolerance


def test_the_candidate_config_round_trips_through_flattened_run_params():
    """Scoring rebuilds the candidate settings from the MLflow run's flattened params."""
    from recpipe.tasks.registry.model_registry import flatten_params
    from recpipe.tasks.registry.scoring_model import trained_candidates

    params = TrainParams(candidates=CandidateConfig(n_mf=7, covis_seeds=2, top_categories=4))
    logged = {k: str(v) for k, v in flatten_params(params.model_dump()).items()}
    assert trained_candidates(logged) == params.candidates
