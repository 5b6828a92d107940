"""Fast per-row orderings of (row, value, tie) triples, for top-n selections.

`np.lexsort` over three keys sorts three times; here rows and values are packed into one
unsigned 64-bit key (row in the high half, the float32 value's order-preserving bit pattern
in the low half) and sorted once, stably, after the entries are put in (row, tie) order.
Values are compared as float32, so scores closer than float32 precision count as ties.
"""

from __future__ import annotations

import numpy as np

_SIGN = np.uint32(0x80000000)


def _float_key(values: np.ndarray) -> np.ndarray:
    """uint32 keys ordered like the float32 values (ascending); NaN sorts last."""
    v = np.ascontiguousarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 -> 0.0
    bits = v.view(np.uint32)
    key = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    key[np.isnan(v)] = np.uint32(0xFFFFFFFF)
    return key


def positions_in_rows(sorted_rows: np.ndarray) -> np.ndarray:
    """0-based position of each entry within its row, for rows in non-decreasing order
    (one linear pass; `np.searchsorted(rows, rows)` does the same in n log n)."""
    n = len(sorted_rows)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_rows[1:], sorted_rows[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def row_value_order(
    row: np.ndarray, value: np.ndarray, tie: np.ndarray | None = None, descending: bool = True
) -> np.ndarray:
    """Indices sorting entries by row (ascending), then value (descending by default), then
    `tie` (ascending). Same result as `np.lexsort((tie, -value, row))` for float32 values."""
    n = len(row)
    row = np.asarray(row)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if row.min() < 0 or row.max() >= 2**32:
        raise ValueError("rows must fit in 32 bits")
    base = np.arange(n)
    if tie is not None:  # entries must be in (row, tie) order for the stable sort to break ties
        tie = np.asarray(tie).astype(np.int64)
        rt = row.astype(np.int64) * (int(tie.max()) - int(tie.min()) + 1) + (tie - tie.min())
        if n > 1 and not (rt[1:] >= rt[:-1]).all():
            base = np.argsort(rt, kind="stable")
    vk = _float_key(-np.asarray(value)[base] if descending else np.asarray(value)[base])
    key = (row[base].astype(np.uint64) << np.uint64(32)) | vk.astype(np.uint64)
    return base[np.argsort(key, kind="stable")]
