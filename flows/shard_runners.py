"""Task runners that score user shards in parallel.

`workers` > 1 runs shards in that many worker processes (each with `cpu_count // workers`
threads for LightGBM and the MF search); 1 scores them one after another in the flow's
process. Worker processes report to the flow's Prefect API: a configured one
(`PREFECT_API_URL`) they inherit; with the local temporary server they are pointed at this
process's server, so they do not each start their own on the same SQLite file.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from recpipe.settings import LOG_FORMAT


def scoring_workers(requested: int) -> int:
    """Worker processes for `requested` (0 = one per CPU core)."""
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


def shard_task_runner(workers: int) -> TaskRunner:
    """A runner for shard tasks: processes when `workers` > 1, else the flow's own process."""
    if workers <= 1:
        return ThreadPoolTaskRunner(max_workers=1)
    _share_local_api()
    return ProcessPoolTaskRunner(
        max_workers=workers, initializer=_worker_logging, initargs=(logging.getLogger().level,)
    )


def scored_shards(shard_task, workers: int, shard_kwargs: list[dict]) -> tuple[list, float]:
    """Run `shard_task` once per shard (keyword arguments in `shard_kwargs`) on a runner of
    `workers` processes; the results in shard order and the wall seconds of the whole fan-out
    (worker start-up included). The first failing shard's error is raised."""
    started = time.perf_counter()
    with shard_task_runner(workers) as runner:
        try:
            futures = [runner.submit(shard_task, kwargs) for kwargs in shard_kwargs]
            results = [_result(f) for f in futures]
        except BaseException:  # a failed shard or an interrupt: no worker goes on writing
            _stop_workers(runner)
            raise
    return results, time.perf_counter() - started


def _result(future, poll_seconds: float = 0.5):
    """`future.result()`, waited for in short steps: Python runs signal handlers in the main
    thread only, and a SIGINT the kernel hands to another thread would otherwise wait until
    a shard ends (minutes) to interrupt the flow."""
    while not future.wrapped_future.done():
        future.wait(poll_seconds)
    return future.result()


def _stop_workers(runner: TaskRunner) -> None:
    """Terminate a process runner's workers (queued shards are cancelled by its exit)."""
    executor = getattr(runner, "_executor", None)
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()


def _worker_logging(level: int) -> None:
    """Workers log like the flow's process (the CLI logs `recpipe.*` at INFO to stderr) and
    die with it."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    _die_with_parent(os.getppid())


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
