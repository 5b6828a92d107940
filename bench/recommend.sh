#!/usr/bin/env bash
# Benchmark `recpipe recommend` alone on a trained data directory, several times.
#   bench/recommend.sh DATA_DIR [RUNS] [extra recpipe recommend options...]
# Prints, per run, the scoring time and users/s the command reports (all shards, worker start-up
# included), its wall time and peak RSS (largest single process), the share of CPU time the host
# took away from this VM (steal, from /proc/stat: well above 0 means the numbers are pessimistic),
# the reference workload's time just before the run (bench/reference.py: comparable runs have
# comparable reference times), then the median users/s.
set -euo pipefail
DATA=${1:?data dir with a trained model}
RUNS=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT="$HERE/bench/results"
mkdir -p "$OUT"
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
rates=(); walls=()
for i in $(seq 1 "$RUNS"); do
  log="$OUT/recommend-only-$i.log"
  ref=$("$HERE/.venv/bin/python" "$HERE/bench/reference.py")
  s0=$(steal_ticks); t0=$(date +%s.%N)
  /usr/bin/time -v "$HERE/.venv/bin/recpipe" recommend --data-dir "$DATA" "$@" >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
  line=$(grep -E "^scoring [0-9.]+s" "$log")
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  rss=$(grep "Maximum resident" "$log" | awk '{print $NF}')
  steal=$(awk -v a="$s0" -v b="$(steal_ticks)" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
    -v n="$(nproc)" 'BEGIN {printf "%.0f%%", (b - a) / ((t1 - t0) * hz * n) * 100}')
  echo "run $i: $line; wall $wall; peak RSS $((rss / 1024)) MB; cpu steal $steal; $ref"
  rates+=("$(echo "$line" | sed -E 's/.*= ([0-9,]+) users\/s.*/\1/' | tr -d ,)")
  walls+=("$wall")
done
printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print "median users/s: " a[int((NR+1)/2)]}'
