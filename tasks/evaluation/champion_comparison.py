"""The current champion's score on this run's evaluation window, for the promotion gate."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.candidates.ranker_features import FEATURE_NAMES
from recpipe.tasks.evaluation.offline_evaluation import (
    EvalConfig,
    baseline_evaluation,
    model_evaluation,
)

logger = logging.getLogger(__name__)


@dataclass
class ChampionScore:
    version: str | None
    ndcg_at_10: float | None
    how: str


def champion_score(
    tracking_uri: str,
    model_name: str,
    eval_window: str,
    warehouse: Path,
    emb_path: str,
    cand_cfg: CandidateConfig,
    eval_cfg: EvalConfig,
    download_dir: Path,
) -> ChampionScore:
    """Champion's ndcg_at_10 on `eval_window`: its logged value when it was evaluated on the
    same window, otherwise its booster re-scored on this run's evaluation snapshot."""
    from recpipe.tasks.registry.model_registry import champion_info, load_model_version

    info = champion_info(tracking_uri, model_name)
    if info is None:
        return ChampionScore(None, None, "no champion yet")
    if info.tags.get("eval_window") == eval_window and "ndcg_at_10" in info.metrics:
        return ChampionScore(
            info.version, float(info.metrics["ndcg_at_10"]), "logged on the same evaluation window"
        )
    loaded = load_model_version(tracking_uri, model_name, "champion", Path(download_dir))
    if loaded.baseline:  # a baseline fallback: the same baseline on this window
        res = baseline_evaluation(warehouse, "eval", emb_path, cand_cfg, eval_cfg)
        score = res.metrics.get(f"baseline.{loaded.baseline}.ndcg_at_10")
        return ChampionScore(
            info.version, score, f"champion's baseline {loaded.baseline} on this evaluation window"
        )
    if list(loaded.feature_names) != list(FEATURE_NAMES):
        return ChampionScore(info.version, None, "champion uses other features: not comparable")
    booster_file = Path(download_dir) / f"champion-v{info.version}.lgb"
    loaded.booster.save_model(str(booster_file))
    res = model_evaluation(warehouse, "eval", emb_path, str(booster_file), cand_cfg, eval_cfg)
    return ChampionScore(
        info.version,
        res.metrics["ndcg_at_10"],
        "champion booster re-scored on this evaluation window",
    )
