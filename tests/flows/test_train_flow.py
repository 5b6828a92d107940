"""The train flow end to end on the `small` shop: MLflow runs, the promotion gate, task caching."""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _required_metrics() -> set[str]:
    return {
        "ndcg_at_10",
        "recall_at_20",
        "baseline.popularity.ndcg_at_10",
        "segment.cold.ndcg_at_10",
        "candidates.recall_at_200",
        "timing.ranker_seconds",
    }


REPORTS = {
    "reports/feature_importance.png",
    "reports/ndcg_at_k.png",
    "reports/evaluation_report.md",
}


def _cache_files(data: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((data / "models" / "cache").iterdir())}


@pytest.fixture(scope="module")
def trained(prefect_server, small_shop, tmp_path_factory) -> dict:
    """Three train runs on one data dir: good, deliberately worse, the good one again."""
    from recpipe.flows.train import train_flow
    from recpipe.params import ALSParams, CandidateConfig, RankerParams, TrainParams
    from recpipe.tasks.ingest.ingested_events import ingested_events

    data = tmp_path_factory.mktemp("train_flow") / "data"
    ingested_events(
        small_shop / "events",
        data / "lake",
        ["view", "cart", "purchase"],
        items=small_shop / "items.parquet",
        users=small_shop / "users.parquet",
        now=datetime(2027, 1, 1),
    )
    # early stopping after 10 flat rounds instead of 30: the same model here (best iteration is
    # reached early), a third of the boosting time on a busy 2-core box
    good = TrainParams(data_dir=str(data), ranker=RankerParams(early_stopping_rounds=10))
    worse = TrainParams(
        data_dir=str(data),
        als=ALSParams(factors=2, iterations=1),
        ranker=RankerParams(n_estimators=2, early_stopping_rounds=10),
        candidates=CandidateConfig(n_mf=7, mf_pool=300),
    )
    t0 = time.perf_counter()
    first = train_flow(good)
    after_first = _cache_files(data)
    t1 = time.perf_counter()
    second = train_flow(worse)
    before_third = _cache_files(data)
    t2 = time.perf_counter()
    third_state = train_flow(good, return_state=True)
    print(f"train_flow runs: {t1 - t0:.1f}s, {t2 - t1:.1f}s, {time.perf_counter() - t2:.1f}s")
    return {
        "data": data,
        "first": first,
        "second": second,
        "third": third_state.result(),
        "third_flow_run_id": third_state.state_details.flow_run_id,
        "after_first": after_first,
        "before_third": before_third,
        "after_third": _cache_files(data),
    }


def test_first_run_becomes_champion_and_a_worse_one_does_not(trained):
    first, second = trained["first"], trained["second"]
    a, b = first["metrics"]["ndcg_at_10"], second["metrics"]["ndcg_at_10"]
    print(
        f"ndcg_at_10: first {a:.4f} (v{first['version']}), worse {b:.4f} (v{second['version']}); "
        f"{second['reason']}"
    )
    assert first["promoted"] and "no champion" in first["reason"]
    assert b < a
    assert not second["promoted"]
    assert f"{a:.4f}" in second["reason"] and f"{b:.4f}" in second["reason"]
    assert f"v{first['version']}" in second["reason"]


def test_scoring_generates_candidates_as_each_model_was_trained(trained):
    from recpipe.settings import Settings
    from recpipe.tasks.candidates.candidate_sets import CandidateConfig
    from recpipe.tasks.registry.scoring_model import scoring_model, trained_candidates

    s = Settings(data_dir=str(trained["data"]))
    first = scoring_model(
        s.tracking_uri,
        s.registered_model_name,
        str(trained["first"]["version"]),
        s.models_dir / "scoring",
    )
    second = scoring_model(
        s.tracking_uri,
        s.registered_model_name,
        str(trained["second"]["version"]),
        s.models_dir / "scoring",
    )
    assert first.candidates == CandidateConfig()
    assert second.candidates == CandidateConfig(n_mf=7, mf_pool=300)
    # a run that predates a setting gets the default for it; other params are ignored
    assert trained_candidates({"candidates.n_covis": "12", "als.factors": "4"}) == CandidateConfig(
        n_covis=12
    )


def test_mlflow_runs_are_comparable_and_complete(trained):
    from mlflow.tracking import MlflowClient

    from recpipe.settings import Settings

    settings = Settings(data_dir=trained["data"])
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp = client.get_experiment_by_name(trained["first"]["experiment"])
    runs = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    ids = [trained[k]["run_id"] for k in ("first", "second", "third")]
    assert set(ids) <= set(runs) and len(set(ids)) == 3
    keys = [set(runs[i].data.metrics) for i in ids]
    assert keys[0] == keys[1] == keys[2], set.symmetric_difference(*keys[:2])
    required = _required_metrics()
    assert required <= keys[0], required - keys[0]
    for i in ids:
        run = runs[i]
        assert run.info.status == "FINISHED"
        assert math.isfinite(run.data.metrics["segment.cold.ndcg_at_10"])
        for tag in ("data_fingerprint", "as_of", "git_commit"):
            assert run.data.tags.get(tag), f"run {i} lacks tag {tag}"
        assert run.data.tags["as_of"] == trained["first"]["as_of"].isoformat()
        artifacts = {f.path for f in client.list_artifacts(i, "reports")}
        assert REPORTS <= artifacts, REPORTS - artifacts
    assert runs[ids[0]].data.tags["data_fingerprint"] == runs[ids[1]].data.tags["data_fingerprint"]
    # the registry agrees with the flow's answers
    name = settings.registered_model_name
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == str(trained["third"]["version"]), (champion, trained["third"])
    versions = {str(v.version) for v in client.search_model_versions(f"name='{name}'")}
    assert {str(trained[k]["version"]) for k in ("first", "second", "third")} == versions
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert str(challenger.version) == str(trained["second"]["version"])


def test_identical_run_gives_identical_metrics(trained):
    first, third = trained["first"], trained["third"]
    same = {k: v for k, v in first["metrics"].items() if not k.startswith("timing.")}
    assert {k: third["metrics"][k] for k in same} == same
    assert third["promoted"]  # equal to the champion's score passes the gate (tolerance 0)


def test_identical_run_reuses_cached_work(trained):
    """Run 3 repeats run 1: its ALS, training-set and ranker tasks must come from the cache."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[trained["third_flow_run_id"]]))
        )
    states = {
        tr.name: tr.state.name
        for tr in task_runs
        if tr.name.startswith(("als_embeddings", "ranker_training_set", "ranker_model"))
    }
    print("third run:", states)
    print("cache keys:", {tr.name: tr.cache_key for tr in task_runs if tr.name in states})
    n_als = sum(n.startswith("als_embeddings") for n in states)  # one per snapshot
    assert n_als >= 3 and len(states) == n_als + 2, states  # + training set, ranker
    # the cache holds the first run's files and the worse run's; the third run wrote none
    assert {n.split("-")[0] for n in trained["after_first"]} == {"als", "trainset", "ranker"}
    assert set(trained["after_first"]) < set(trained["before_third"])
    rewritten = sorted(
        n for n, t in trained["after_third"].items() if trained["before_third"].get(n) != t
    )
    assert not rewritten, f"cached files rewritten by an identical run: {rewritten}; {states}"
    assert all(s == "Cached" for s in states.values()), states
