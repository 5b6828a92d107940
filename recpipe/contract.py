"""The data contract in one place: event types, candidate and recommendation sources, and the
columns of the published recommendation table.

Everything that names one of these imports it from here, so a new event type or source is
added once.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = ("view", "cart", "purchase")
"""The standard event types, weakest to strongest intent."""

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "cart": 4.0, "purchase": 8.0}
"""Weight of each event type in the interaction matrix (overridable: RECPIPE_EVENT_WEIGHTS)."""

DEFAULT_LABEL_GRADES: dict[str, int] = {"view": 1, "cart": 2, "purchase": 3}
"""Relevance grade of each event type in ranking labels (other types: 1)."""

CANDIDATE_SOURCES: tuple[str, ...] = (
    "history",
    "repeat",
    "covis",
    "mf",
    "popular",
    "trending",
    "category",
)
"""Candidate generators; each one's rank and score are ranker features (`rank.<source>`)."""

RECOMMENDATION_SOURCES: tuple[str, ...] = ("ranker", "coldstart", "explore", "popular", "baseline")
"""Values of the published table's `source` column (`baseline`: the model version is the best
simple baseline, published when the log was too thin to train a ranker)."""

RECOMMENDATION_COLUMNS: tuple[str, ...] = (
    "user_id",
    "rank",
    "item_id",
    "score",
    "source",
    "propensity",
    "model_version",
    "run_id",
    "generated_at",
)
"""Columns of the published recommendation table, in order."""
