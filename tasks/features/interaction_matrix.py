"""The user x item interaction matrix with its id maps.

Built by `recpipe.tasks.features.snapshot_arrays` from a feature snapshot: strength is
`user_item_features.strength` (event weight times time decay as of the snapshot's cutoff).
Users are those of `user_features` (plus extra ids asked for), items those of
`item_features`, both sorted, so row/column i always means the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass
class InteractionMatrix:
    """CSR (users x items, float32) together with the ids its rows and columns stand for."""

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    as_of: datetime | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def user_index(self, ids) -> np.ndarray:
        """Row of each id (-1 when unknown)."""
        return pd.Index(self.user_ids).get_indexer(pd.Index(np.asarray(ids)))

    def item_index(self, ids) -> np.ndarray:
        """Column of each id (-1 when unknown)."""
        return pd.Index(self.item_ids).get_indexer(pd.Index(np.asarray(ids)))
