"""Score one user shard of a trained data directory and report users/s and peak memory.

    .venv/bin/python bench/shard_scoring.py DATA_DIR N_SHARDS [SHARD] [MODEL_VERSION] [THREADS]

Run in its own process so peak RSS (ru_maxrss) is the shard's own. With N_SHARDS chosen so
that shards hold the same number of users, peak memory should not grow with the total number
of users (only the item-side arrays are whole).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    data, n_shards = Path(sys.argv[1]).resolve(), int(sys.argv[2])
    shard = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    version = sys.argv[4] if len(sys.argv) > 4 else "champion"
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1  # as in a worker process on 2 cores
    os.environ["RECPIPE_DATA_DIR"] = str(data)
    from recpipe.settings import Settings
    from recpipe.tasks.registry.scoring_model import scoring_model
    from recpipe.tasks.serving.user_recommendations import RecommendConfig, user_recommendations

    s = Settings()
    model = scoring_model(
        s.tracking_uri, s.registered_model_name, version, s.models_dir / "scoring"
    )
    out = Path(tempfile.mkdtemp()) / "part.parquet"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    r = user_recommendations(
        s.warehouse_path,
        shard,
        n_shards,
        model.booster_path,
        model.mf_path,
        RecommendConfig(threads=threads),
        model.version,
        model.run_id,
        datetime.now(),
        str(out),
        ranker_lib=model.ranker_lib,
    )
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{data.name}: shard {shard}/{n_shards}: {r.n_users} users in {secs:.1f}s = "
        f"{r.n_users / secs:,.0f} users/s ({threads} thread{'s' if threads > 1 else ''}, "
        f"{'compiled' if model.ranker_lib else 'LightGBM'} ranker); peak RSS {rss:.0f} MB (before scoring {rss_before:.0f} MB)"
    )


if __name__ == "__main__":
    main()
