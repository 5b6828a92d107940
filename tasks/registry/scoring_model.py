"""The registered model a scoring run uses, downloaded to local files."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from recpipe.errors import InputError
from recpipe.tasks.candidates.candidate_sets import CandidateConfig
from recpipe.tasks.models.compiled_ranker import compiled_ranker


@dataclass
class ScoringModel:
    version: str
    run_id: str
    booster_path: str
    mf_path: str
    ranker_lib: str | None = None  # the booster compiled to native code, when a compiler is present
    candidates: CandidateConfig = field(default_factory=CandidateConfig)  # as the model was trained
    baseline: str | None = None  # a baseline fallback version: no booster, this baseline's lists


def trained_candidates(run_params: dict[str, str]) -> CandidateConfig:
    """The candidate settings a model was trained with, from its run's `candidates.*` params;
    defaults for settings the run did not log (models trained before a setting existed)."""
    given = {
        f.name: int(float(run_params[f"candidates.{f.name}"]))
        for f in fields(CandidateConfig)
        if f"candidates.{f.name}" in run_params
    }
    return CandidateConfig(**given)


def scoring_model(
    tracking_uri: str, model_name: str, version_or_alias: str, dest: Path
) -> ScoringModel:
    """Download `model_name` @ `version_or_alias` ("champion" or a number): booster file, MF factors
    and the candidate settings it was trained with (scoring must generate candidates the same way)."""
    from recpipe.tasks.registry.model_registry import load_model_version

    loaded = load_model_version(tracking_uri, model_name, str(version_or_alias), Path(dest))
    if loaded.baseline:
        return ScoringModel(
            str(loaded.version),
            loaded.run_id,
            "",
            str(loaded.mf_path),
            None,
            trained_candidates(loaded.params),
            baseline=loaded.baseline,
        )
    booster_path = Path(dest) / f"v{loaded.version}" / "booster.lgb"
    booster_path.parent.mkdir(parents=True, exist_ok=True)
    loaded.booster.save_model(str(booster_path))
    return ScoringModel(
        str(loaded.version),
        loaded.run_id,
        str(booster_path),
        str(loaded.mf_path),
        compiled_ranker(str(booster_path)),
        trained_candidates(loaded.params),
    )


def exclusion_list(path: str | None) -> tuple:
    """Item ids from a Parquet/CSV file with an `item_id` column, or a text file of one id per line."""
    if not path:
        return ()
    p = Path(path)
    if p.suffix == ".parquet":
        ids = pd.read_parquet(p, columns=["item_id"])["item_id"]
    elif p.suffix == ".csv":
        df = pd.read_csv(p)
        if "item_id" not in df.columns:
            raise InputError(f"{p}: no item_id column (found {list(df.columns)})")
        ids = df["item_id"]
    else:
        ids = pd.Series([line.strip() for line in p.read_text().splitlines() if line.strip()])
    return tuple(np.asarray(ids).tolist())
