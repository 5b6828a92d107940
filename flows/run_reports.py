"""Reports attached to Prefect runs (markdown artifacts); silent outside a run."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


def markdown_artifact(key: str, markdown: str, description: str | None = None) -> str | None:
    """Attach `markdown` to the current flow or task run as an artifact; returns its id or None."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    key = re.sub(r"[^a-z0-9-]", "-", key.lower())
    return str(create_markdown_artifact(key=key, markdown=markdown, description=description))


def failure_report(flow, flow_run, state) -> None:
    """`on_failure` hook: the reason a run failed, as a `run-failure` artifact of the run and an
    error line in its log (where a person looks first in the Prefect UI)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.logging.loggers import flow_run_logger

    try:
        state.result(raise_on_failure=True)
        reason = state.message or "unknown"
    except BaseException as exc:  # the run's own error
        reason = f"{type(exc).__name__}: {exc}"
    flow_run_logger(flow_run, flow).error("%s run failed: %s", flow.name, reason)
    create_markdown_artifact(
        key="run-failure",
        markdown=f"## {flow.name} failed\n\n```\n{reason}\n```\n\nParameters: "
        f"`{flow_run.parameters}`",
        description=f"why {flow.name} run {flow_run.name} failed",
    )
