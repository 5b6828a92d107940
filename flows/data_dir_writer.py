"""The decorator every writing flow wears: the data directory's writer lock for the whole run,
and the project's log levels in whatever process runs it."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from recpipe.configs import settings_for
from recpipe.tasks.common.data_dir_lock import writer_lock


def _project_log_levels() -> None:
    """recpipe's row counts and timings at INFO in any process that runs a flow (a worker's run
    has only Prefect's logging set up); libraries' chatter stays at WARNING."""
    if logging.getLogger("recpipe").level == logging.NOTSET:
        logging.getLogger("recpipe").setLevel(logging.INFO)
    for noisy in ("great_expectations", "httpx", "urllib3", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def one_writer(command: str) -> Callable:
    """Hold the writer lock of the flow's `params.data_dir` (or the environment's) while the
    flow runs; a second writer waits `Settings.lock_wait_seconds`, then fails naming the
    holder. Sub-flows of a holder re-enter the lock."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(params: Any) -> Any:
            _project_log_levels()
            settings = settings_for(params.data_dir)
            with writer_lock(settings.data_path, command, settings.lock_wait_seconds):
                return fn(params)

        # Prefect builds the parameter schema from the signature: give it the flow's own
        # annotations resolved (they are strings, and this module does not know the models)
        run.__annotations__ = typing.get_type_hints(fn)
        run.__signature__ = inspect.signature(fn, eval_str=True)
        return run

    return wrap
