#!/usr/bin/env bash
# Time `recpipe ingest` + `recpipe features` on a generated preset (see bench/README.md).
#
#   bench/ingest_features.sh PRESET_DIR [DATA_DIR] [RUNS]
#
# PRESET_DIR holds events/, items.parquet and users.parquet (`recpipe generate --preset medium
# --out PRESET_DIR`). DATA_DIR (default a new temporary directory) is wiped before each run.
# Prints wall time and max RSS (GNU time, largest single process) per command and per run,
# then the median over RUNS (default 1). Full `time -v` output and logs stay in DATA_DIR.log/.
set -euo pipefail

preset=${1:?usage: bench/ingest_features.sh PRESET_DIR [DATA_DIR] [RUNS]}
data=${2:-$(mktemp -d /tmp/recpipe-bench.XXXXXX)}
runs=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
recpipe=${RECPIPE:-$root/.venv/bin/recpipe}
timer=/usr/bin/time
[[ -x $timer ]] || { echo "needs GNU time at $timer (apt-get install time)" >&2; exit 1; }
for f in "$preset/events" "$preset/items.parquet" "$preset/users.parquet"; do
    [[ -e $f ]] || { echo "$f not found (generate the preset first)" >&2; exit 1; }
done
logs="$data.log"
mkdir -p "$logs"

# wall seconds and max RSS (MB) from a `time -v` report
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}' "$1"; }
rss_of() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }

# microseconds in which some task waited for a CPU (Linux PSI); over a run, the share of its
# wall time: well above 0 means other load on the machine (or more threads than cores)
stall_us() { [[ -r /proc/pressure/cpu ]] && awk '/^some/ {sub("total=", "", $5); print $5}' /proc/pressure/cpu || echo 0; }
stall_share() { awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN {printf "%.0f%%", (b - a) / (w * 1e6) * 100}'; }

declare -a t_ing t_feat t_tot
printf '%-4s %12s %12s %12s %12s %10s %10s\n' run ingest_s ingest_MB features_s features_MB total_s cpu_stall
for run in $(seq 1 "$runs"); do
    rm -rf "$data"
    s0=$(stall_us)
    echo "$(date '+%F %T,%3N') bench.start ingest" >"$logs/ingest-$run.log"
    "$timer" -v -o "$logs/ingest-$run.time" "$recpipe" ingest --events "$preset/events" \
        --items "$preset/items.parquet" --users "$preset/users.parquet" --data-dir "$data" \
        >>"$logs/ingest-$run.log" 2>&1 || { echo "ingest failed, see $logs/ingest-$run.log" >&2; exit 1; }
    echo "$(date '+%F %T,%3N') bench.start features" >"$logs/features-$run.log"
    "$timer" -v -o "$logs/features-$run.time" "$recpipe" features --data-dir "$data" \
        >>"$logs/features-$run.log" 2>&1 || { echo "features failed, see $logs/features-$run.log" >&2; exit 1; }
    wi=$(wall_of "$logs/ingest-$run.time"); wf=$(wall_of "$logs/features-$run.time")
    load=$(stall_share "$s0" "$(stall_us)" "$(awk -v a="$wi" -v b="$wf" 'BEGIN {print a + b}')")
    t_ing+=("$wi"); t_feat+=("$wf"); t_tot+=("$(awk -v a="$wi" -v b="$wf" 'BEGIN {printf "%.1f", a + b}')")
    printf '%-4s %12s %12s %12s %12s %10s %10s\n' "$run" "$wi" "$(rss_of "$logs/ingest-$run.time")" \
        "$wf" "$(rss_of "$logs/features-$run.time")" "${t_tot[-1]}" "$load"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf '%-4s %12s %12s %12s %12s %10s\n' median "$(median "${t_ing[@]}")" - "$(median "${t_feat[@]}")" - \
    "$(median "${t_tot[@]}")"
# the last run's log lines with their clock time: the gap after bench.start is the start-up
grep -h "bench.start\|features.feature_tables\|ingest.ingested_events" "$logs"/ingest-"$runs".log \
    "$logs"/features-"$runs".log \
    | sed 's/^[0-9-]* \([0-9:,]*\) [a-z_.]* /  \1 /' || true
echo "logs: $logs"
