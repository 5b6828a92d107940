"""Great Expectations suites kept as JSON in `expectations/`, run on in-memory frames.

GX is imported inside the functions (the import alone costs seconds). One ephemeral context
per process is reused, with each suite registered in it once; it writes no files.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)
EXPECTATIONS_DIR: Traversable = files("recpipe.expectations")  # package data


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    observed: Any = None


@dataclass
class SuiteResult:
    """Outcome of one suite on one frame; `failures()` names what did not hold."""

    suite: str
    success: bool
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [
            f"{o.expectation}({o.column or ''}) unexpected={o.unexpected_count} observed={o.observed}"
            for o in self.outcomes
            if not o.success
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "success": self.success,
            "rows": self.rows,
            "failures": self.failures(),
        }


def suite_definition(name: str) -> dict[str, Any]:
    """The JSON suite `expectations/<name>.json`."""
    path = EXPECTATIONS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no expectation suite {name}.json in the recpipe.expectations package"
        )
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def warm_up() -> threading.Thread:
    """Import GX on a daemon thread, started as a run's flow starts up: the import costs about
    3 s of single-threaded Python, which the ingest's first suite would otherwise pay while the
    ingest's DuckDB work wants both cores, and the flow start-up leaves a core idle while it
    waits for its local API server. Only the import: the context (whose creation logs) is
    built by the first suite, as before, so a run that fails before one prints nothing more."""
    thread = threading.Thread(target=_import_gx, name="gx-warm-up", daemon=True)
    thread.start()
    return thread


def _import_gx() -> None:
    import great_expectations  # noqa: F401


_registering = threading.Lock()


@cache
def _validation_definition(suite_name: str):
    """Suite `suite_name` with a whole-dataframe batch, registered once per process, and the
    lock its runs take turns on (they share the registered data source).

    Registering a suite, a data source and a validation definition costs about 0.02 s of Python
    per call (the ephemeral context writes its config as YAML on each change), a tenth of a
    200k-row events suite: each run now passes only its frame and its parameters."""
    import great_expectations as gx

    ctx = _context()
    definition = suite_definition(suite_name)
    suite = ctx.suites.add(
        gx.ExpectationSuite(name=suite_name, expectations=definition["expectations"])
    )
    batch = (
        ctx.data_sources.add_pandas(f"src_{suite_name}")
        .add_dataframe_asset(f"asset_{suite_name}")
        .add_batch_definition_whole_dataframe(f"batch_{suite_name}")
    )
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"vd_{suite_name}", data=batch, suite=suite)
    )
    return vd, threading.Lock()


def validate_frame(
    df: pd.DataFrame, suite_name: str, parameters: dict[str, Any] | None = None
) -> SuiteResult:
    """Run suite `suite_name` on `df`; `parameters` fill `{"$PARAMETER": ...}` placeholders.

    Runs of one suite take turns; GX holds the GIL for most of a run, so threads gain little
    from running them side by side."""
    with _registering:
        vd, turn = _validation_definition(suite_name)
    with turn:
        try:
            result = vd.run(
                batch_parameters={"dataframe": df}, expectation_parameters=parameters or {}
            )
        finally:
            # the data source's engine keeps the last batch (the frame) until the next run, and
            # the run stored its result in the context (10 KiB a run, never read back): drop
            # both, so a registered suite holds nothing between runs
            batches = vd.data.data_asset.datasource.get_execution_engine().batch_manager
            batches.batch_data_cache.clear()
            batches.reset_batch_cache()
            results = _context().validation_results_store
            for key in results.list_keys():
                results.remove_key(key.to_tuple())
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=(
                    cfg.kwargs.get("column")
                    or ",".join(cfg.kwargs.get("column_list", []) or [])
                    or ",".join(
                        c for c in (cfg.kwargs.get("column_A"), cfg.kwargs.get("column_B")) if c
                    )
                    or None
                ),
                success=bool(r.success),
                unexpected_count=res.get("unexpected_count"),
                observed=res.get("observed_value"),
            )
        )
    return SuiteResult(
        suite=suite_name, success=bool(result.success), rows=len(df), outcomes=outcomes
    )
