"""Task runners that score user shards in parallel.

Three runners (`runner`): `local` scores shards one after another in the flow's process;
`processes` (the default) runs them in `workers` worker processes on this machine (each with
`cpu_count // workers` threads for LightGBM and the MF search; 1 worker = `local`); `dask`
submits them to a Dask cluster: the one at `dask_address` (`tcp://host:8786`), else a
`LocalCluster` of `workers` single-threaded worker processes started for the fan-out. Every
shard task loads the compiled ranker and the MF factors from their files, never from the
parent's memory, so a Dask worker on another machine needs the data directory at the same
path (a shared mount) and the same recpipe install.

Worker processes report to the flow's Prefect API: a configured one (`PREFECT_API_URL`) they
inherit; with the local temporary server they are pointed at this process's server, so they
do not each start their own on the same SQLite file.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from recpipe.settings import LOG_FORMAT, Runner
from recpipe.tasks.common.stage_timings import stage

# A LocalCluster's workers score like the process pool's: without the nanny's default
# MALLOC_TRIM_THRESHOLD_=65536, which hands freed memory back to the kernel at once, so each
# batch's large numpy temporaries are page-faulted in again, and without the statistical
# profiler, which samples every thread's stack every 10 ms under the GIL.
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {},
    "distributed.worker.profile.enabled": False,
}


def scoring_workers(requested: int, runner: Runner = "processes") -> int:
    """Worker processes for `requested` (0 = one per CPU core); 1 for the `local` runner."""
    if runner == "local":
        return 1
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def shard_count(n_users: int, requested: int, shard_users: int, workers: int) -> int:
    """Shards to score `n_users` in: `requested` if > 0, else the fewest that keep every shard
    within `shard_users` users (memory per worker stays flat however many users there are),
    rounded up to a multiple of `workers` so the workers finish together."""
    if requested > 0:
        return requested
    needed = max(1, math.ceil(n_users / max(shard_users, 1)))
    per_worker = max(1, workers)
    return math.ceil(needed / per_worker) * per_worker


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def shard_task_runner(
    workers: int, runner: Runner = "processes", dask_address: str | None = None
) -> TaskRunner:
    """A runner for shard tasks: see the module's docstring."""
    if runner == "dask":
        _share_local_api()
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # for worker processes
        from prefect_dask import DaskTaskRunner

        if not logging.getLogger().isEnabledFor(logging.DEBUG):  # the scheduler and nannies
            logging.getLogger("distributed").setLevel(logging.WARNING)

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        import dask

        dask.config.set(LOCAL_CLUSTER_CONFIG)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": max(1, workers),
                "threads_per_worker": 1,  # one shard at a time; its own threads score it
                "processes": True,
                "dashboard_address": None,
            }
        )
    if runner == "local" or workers <= 1:
        return ThreadPoolTaskRunner(max_workers=1)
    _share_local_api()
    return ProcessPoolTaskRunner(
        max_workers=workers, initializer=_worker_logging, initargs=(logging.getLogger().level,)
    )


def scored_shards(
    shard_task,
    workers: int,
    shard_kwargs: list[dict],
    runner: Runner = "processes",
    dask_address: str | None = None,
) -> tuple[list, float]:
    """Run `shard_task` once per shard (keyword arguments in `shard_kwargs`) on the `runner`
    with `workers` processes; the results in shard order and the wall seconds of the whole
    fan-out (worker start-up included). The first failing shard's error is raised."""
    started = time.perf_counter()
    with (
        stage("scoring", part=runner),
        shard_task_runner(workers, runner, dask_address) as task_runner,
    ):
        if runner == "dask":  # shard logs reach the workers' stderr like the pool's do
            task_runner.client.run(_dask_worker_logging, logging.getLogger().level)
        futures = []
        try:
            futures.extend(task_runner.submit(shard_task, kwargs) for kwargs in shard_kwargs)
            results = [_result(f) for f in futures]
        except BaseException:  # a failed shard or an interrupt: no worker goes on writing
            _stop_workers(task_runner, futures)
            raise
    return results, time.perf_counter() - started


def _result(future, poll_seconds: float = 0.5):
    """`future.result()`, waited for in short steps: Python runs signal handlers in the main
    thread only, and a SIGINT the kernel hands to another thread would otherwise wait until
    a shard ends (minutes) to interrupt the flow."""
    while not future.wrapped_future.done():
        future.wait(poll_seconds)
    return future.result()


def _stop_workers(runner: TaskRunner, futures: list) -> None:
    """Terminate a process runner's workers (queued shards are cancelled by its exit); on Dask,
    cancel the shards' futures (a local cluster's workers then stop with the runner's exit)."""
    if getattr(runner, "_client", None) is not None:
        for future in futures:
            future.wrapped_future.cancel(force=True)
        return
    executor = getattr(runner, "_executor", None)
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()


def _worker_logging(level: int) -> None:
    """Workers log like the flow's process (the CLI logs `recpipe.*` at INFO to stderr) and
    die with it."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    _die_with_parent(os.getppid())


def _dask_worker_logging(level: int) -> None:
    """`recpipe.*` lines at the flow's level on a Dask worker's stderr (run on each worker)."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("recpipe").setLevel(level)


def _die_with_parent(parent: int, poll_seconds: float = 0.5) -> None:
    """Exit this worker as soon as its parent is gone (a killed flow process must not leave
    workers scoring, or writing into a version that is being removed). A thread polls the
    parent pid: the kernel's parent-death signal would fire when the *thread* that started the
    worker ends, which in a process pool is not the parent's end."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _share_local_api() -> None:
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the temporary server this process's client runs on
    if server.running:
        os.environ["PREFECT_API_URL"] = server.api_url
