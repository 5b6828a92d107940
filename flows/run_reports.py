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
