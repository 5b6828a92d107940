"""The summary of one scoring run: users, rows by source, speed, where the table is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class RecommendSummary:
    """What a recommend run published, as the CLI prints it and the Prefect run shows it."""

    version: str
    path: str
    previous: str | None
    n_users: int
    n_rows: int
    by_source: dict[str, int]
    model_version: str
    scoring_seconds: float
    n_shards: int
    markdown: str

    @property
    def users_per_second(self) -> float:
        return self.n_users / max(self.scoring_seconds, 1e-9)

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "path": self.path,
            "previous": self.previous,
            "n_users": self.n_users,
            "n_rows": self.n_rows,
            "by_source": self.by_source,
            "model_version": self.model_version,
            "scoring_seconds": self.scoring_seconds,
            "n_shards": self.n_shards,
        }


def recommend_summary(
    shards: list,
    scope,
    model,
    published,
    model_name: str,
    as_of: datetime,
    scoring_seconds: float,
    workers: int,
    runner: str = "processes",
) -> RecommendSummary:
    """Sum the shards' rows (in total and by source) and describe the published version."""
    n_rows = sum(r.n_rows for r in shards)
    by_source: dict[str, int] = {}
    for r in shards:
        for k, v in r.by_source.items():
            by_source[k] = by_source.get(k, 0) + v
    markdown = (
        f"### Recommendations {published.version}\n\nmodel {model_name} v{model.version} "
        f"(run {model.run_id}), as of {as_of.isoformat()}\n\n{scope.n_users:,} users, {n_rows:,} rows, "
        f"K={scope.k}; rows by source: {by_source}\n\nscoring {scoring_seconds:.1f}s = "
        f"{scope.n_users / max(scoring_seconds, 1e-9):,.0f} users/s ({len(shards)} shards, {workers} "
        f"worker{'s' if workers > 1 else ''}, {runner} runner)\n\npath: {published.path}"
    )
    return RecommendSummary(
        published.version,
        published.path,
        published.previous,
        scope.n_users,
        n_rows,
        by_source,
        model.version,
        scoring_seconds,
        len(shards),
        markdown,
    )
