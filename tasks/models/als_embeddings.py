"""Matrix-factorisation embeddings with implicit's ALS, sklearn-shaped and seeded.

Users unknown at fit time (or whose history changed since) get factors by folding in
their interaction rows against the fixed item factors (`recalculate_user`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field

from recpipe.tasks.common.stage_timings import stage

logger = logging.getLogger(__name__)


class ALSParams(BaseModel):
    """implicit ALS hyperparameters (the one place of their defaults)."""

    factors: int = Field(
        48, ge=1, le=512, description="Latent factors (cost grows with its square)."
    )
    regularization: float = Field(0.05, ge=0, description="L2 regularisation.")
    iterations: int = Field(10, ge=1, le=200, description="ALS sweeps.")
    alpha: float = Field(2.0, gt=0, description="Confidence scaling of interaction strength.")
    warm_start_iterations: int = Field(
        3,
        ge=0,
        le=200,
        description="Sweeps of the eval and serve fits, which start from the previous "
        "snapshot's factors (each snapshot only adds a week of events); 0 = fit each from scratch.",
    )


_DEFAULT = ALSParams()


@dataclass
class ALSEmbeddings:
    """Hyperparameters in the constructor (defaults from `ALSParams`); `fit` fills
    user_factors/item_factors and id arrays."""

    factors: int = _DEFAULT.factors
    regularization: float = _DEFAULT.regularization
    iterations: int = _DEFAULT.iterations
    alpha: float = _DEFAULT.alpha
    random_state: int = 42
    num_threads: int = 2

    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None

    def _model(self):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, "blas")
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
            calculate_training_loss=False,
        )

    def fit(
        self,
        matrix: sp.csr_matrix,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        init: ALSEmbeddings | None = None,
    ) -> ALSEmbeddings:
        """Fit on a users x items strength matrix; keeps the id arrays with the factors.

        With `init` (a fit on an earlier snapshot) the sweeps start from its factors, matched by
        user and item id (small random values for ids it did not have), so a few sweeps reach
        what a fit from scratch needs many for."""
        model = self._model()
        if init is not None:
            if init.factors != self.factors:
                raise ValueError(f"warm start from {init.factors} factors into {self.factors}")
            rng = np.random.default_rng(self.random_state)
            model.user_factors = _aligned(init.user_factors, init.user_ids, user_ids, rng)
            model.item_factors = _aligned(init.item_factors, init.item_ids, item_ids, rng)
        model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.user_ids, self.item_ids = np.asarray(user_ids), np.asarray(item_ids)
        return self

    def fold_in(self, user_items: sp.csr_matrix, num_threads: int | None = None) -> np.ndarray:
        """Factors for users given their rows over *this model's* items (least squares, one step),
        on `num_threads` threads (default: the fit's)."""
        if self.item_factors is None:
            raise RuntimeError("fit or load the embeddings first")
        model = self._model()
        model.num_threads = num_threads or self.num_threads
        model.item_factors = self.item_factors
        model.user_factors = np.zeros((1, self.factors), dtype=np.float32)
        rows = np.arange(user_items.shape[0])
        return np.asarray(
            model.recalculate_user(rows, user_items.astype(np.float32).tocsr()), dtype=np.float32
        )

    def save(self, path: Path) -> Path:
        """Factors, ids and hyperparameters in one .npz."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            user_factors=self.user_factors,
            item_factors=self.item_factors,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            hyper=np.array(
                [self.factors, self.regularization, self.iterations, self.alpha, self.random_state],
                dtype=np.float64,
            ),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> ALSEmbeddings:
        with np.load(path, allow_pickle=True) as z:
            f, reg, it, alpha, rs = z["hyper"]
            return cls(
                factors=int(f),
                regularization=float(reg),
                iterations=int(it),
                alpha=float(alpha),
                random_state=int(rs),
                user_factors=z["user_factors"],
                item_factors=z["item_factors"],
                user_ids=z["user_ids"],
                item_ids=z["item_ids"],
            )


def _aligned(
    factors: np.ndarray, ids: np.ndarray, new_ids: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """`factors` (rows for `ids`) re-indexed to `new_ids`; unknown ids get ALS's own small random init."""
    import pandas as pd

    pos = pd.Index(np.asarray(ids)).get_indexer(pd.Index(np.asarray(new_ids)))
    out = (rng.random((len(new_ids), factors.shape[1]), dtype=np.float32) * 0.01).astype(np.float32)
    out[pos >= 0] = factors[pos[pos >= 0]]
    return out


def aligned_item_factors(emb: ALSEmbeddings, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Item factors re-indexed to `item_ids` (zeros for items the model never saw) and a known mask."""
    import pandas as pd

    pos = pd.Index(emb.item_ids).get_indexer(pd.Index(np.asarray(item_ids)))
    out = np.zeros((len(item_ids), emb.factors), dtype=np.float32)
    known = pos >= 0
    out[known] = emb.item_factors[pos[known]]
    return out, known


@dataclass
class EmbeddingsFile:
    """An ALS fit saved to disk (the Prefect task result)."""

    path: str
    snapshot: str
    n_users: int
    n_items: int
    seconds: float


def als_embeddings_file(
    warehouse: Path,
    snapshot: str,
    factors: int,
    regularization: float,
    iterations: int,
    alpha: float,
    seed: int,
    out_path: str,
    warm_start_path: str | None = None,
    warm_start_iterations: int = 0,
) -> EmbeddingsFile:
    """Fit ALS on snapshot `snapshot`'s interaction matrix and save it to `out_path` (.npz).

    With `warm_start_path` (the fit of an earlier snapshot) and `warm_start_iterations` > 0 the
    fit starts from those factors and runs that many sweeps (at most `iterations`)."""
    import time

    from recpipe.tasks.features.snapshot_arrays import snapshot_matrix

    t0 = time.perf_counter()
    with stage("matrix", part=snapshot) as st:
        m = snapshot_matrix(warehouse, snapshot)
        st.rows_out = int(m.matrix.nnz)
    warm = warm_start_path is not None and warm_start_iterations > 0
    emb = ALSEmbeddings(
        factors=factors,
        regularization=regularization,
        iterations=min(warm_start_iterations, iterations) if warm else iterations,
        alpha=alpha,
        random_state=seed,
    )
    with stage("als", rows_in=int(m.matrix.nnz), part=snapshot):
        emb.fit(
            m.matrix,
            m.user_ids,
            m.item_ids,
            init=ALSEmbeddings.load(Path(warm_start_path)) if warm else None,
        )
    emb.save(Path(out_path))
    seconds = time.perf_counter() - t0
    logger.info(
        "ALS on %s: %d users x %d items, %d non-zeros, %d sweeps%s, %.1fs",
        snapshot,
        m.shape[0],
        m.shape[1],
        m.matrix.nnz,
        emb.iterations,
        " from the previous snapshot's factors" if warm else "",
        seconds,
    )
    return EmbeddingsFile(str(out_path), snapshot, m.shape[0], m.shape[1], seconds)
