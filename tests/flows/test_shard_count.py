"""How many user shards a recommend run scores in."""

import pytest

from recpipe.flows.shard_runners import shard_count


def test_an_explicit_shard_count_is_kept():
    assert shard_count(1_000_000, requested=3, shard_users=50_000, workers=2) == 3


def test_shards_grow_with_users_so_each_stays_within_the_bound():
    for n_users in (1, 49_999, 50_000, 50_001, 200_000, 2_000_000):
        n = shard_count(n_users, requested=0, shard_users=50_000, workers=1)
        assert -(-n_users // n) <= 50_000  # the largest bucket's expected size
        assert n == 1 or -(-n_users // (n - 1)) > 50_000  # and no more shards than needed
    assert shard_count(200_000, 0, 50_000, workers=1) == 4
    assert shard_count(2_000_000, 0, 50_000, workers=1) == 40


def test_automatic_counts_are_a_multiple_of_the_workers():
    assert shard_count(10, 0, 50_000, workers=2) == 2
    assert shard_count(120_000, 0, 50_000, workers=2) == 4
    assert shard_count(200_000, 0, 50_000, workers=3) == 6


def test_the_runner_is_the_run_parameter_else_the_recpipe_runner_setting(monkeypatch):
    from recpipe.configs import shard_runner
    from recpipe.errors import InputError
    from recpipe.flows.shard_runners import scoring_workers
    from recpipe.params import RecommendParams
    from recpipe.settings import load_settings

    assert shard_runner(RecommendParams(), load_settings()) == ("processes", None)
    monkeypatch.setenv("RECPIPE_RUNNER", "dask")
    monkeypatch.setenv("RECPIPE_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    settings = load_settings()
    assert shard_runner(RecommendParams(), settings) == ("dask", "tcp://10.0.0.5:8786")
    assert shard_runner(RecommendParams(runner="local"), settings)[0] == "local"
    assert scoring_workers(0, "local") == 1 and scoring_workers(3, "dask") == 3
    monkeypatch.setenv("RECPIPE_RUNNER", "spark")
    with pytest.raises(InputError, match="RECPIPE_RUNNER"):
        load_settings()
