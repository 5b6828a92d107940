"""A fixed workload that says how fast this machine is right now.

    .venv/bin/python bench/reference.py

Prints the median seconds of 5 runs of a single-threaded mix like scoring's (a stable sort
and random gathers over a few hundred MB). On a VM whose speed drifts through the day,
quote it next to a benchmark: two runs are comparable when their reference times are.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def workload(rng: np.random.Generator) -> None:
    keys = rng.integers(0, 2**62, size=4_000_000, dtype=np.uint64)
    np.argsort(keys, kind="stable")
    table = rng.random((200_000, 32), dtype=np.float32)
    idx = rng.integers(0, len(table), size=1_000_000)
    table[idx].sum()


def reference_seconds(runs: int = 5) -> float:
    rng = np.random.default_rng(0)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        workload(rng)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


if __name__ == "__main__":
    print(f"reference {reference_seconds():.3f}s")
