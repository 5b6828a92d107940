#!/usr/bin/env bash
# Benchmark `recpipe train` and `recpipe recommend` on an ingested data directory.
#   bench/train_recommend.sh DATA_DIR [RUNS]
# Prints wall time and peak RSS of each command per run; stage timings are in the logs
# (bench/results/<name>-<run>.log) and, for train, in the MLflow run's timing.* metrics.
set -euo pipefail
DATA=${1:?data dir with an ingested lake}
RUNS=${2:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT="$HERE/bench/results"
mkdir -p "$OUT"
for i in $(seq 1 "$RUNS"); do
  for cmd in train recommend; do
    log="$OUT/$cmd-$i.log"
    /usr/bin/time -v "$HERE/.venv/bin/recpipe" "$cmd" --data-dir "$DATA" >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
    wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
    rss=$(grep "Maximum resident" "$log" | awk '{print $NF}')
    echo "$cmd run $i: wall $wall, peak RSS $((rss / 1024)) MB"
    grep -E "ALS on|ranker:|evaluated [0-9]+/|shard [0-9]+/|users/s" "$log" | sed 's/^/    /' | tail -12
  done
done
