#!/usr/bin/env bash
# Before/after for `recpipe recommend`, interleaved in one sitting (this VM's speed drifts).
#   bench/recommend_ab.sh OLD_REV DATA_DIR [PAIRS] [extra recpipe recommend options...]
# Checks OLD_REV out in a temporary git worktree and runs it on this checkout's .venv (same
# dependencies; PYTHONPATH puts the old code first, and scoring workers inherit it), alternating
# old and current code PAIRS times. Each line: users/s the command reports, wall, peak RSS and
# the reference workload's time just before (bench/reference.py). Ends with both medians.
set -euo pipefail
OLD=${1:?old git revision}
DATA=${2:?data dir with a trained model}
PAIRS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT="$HERE/bench/results"
mkdir -p "$OUT"
TREE=$(mktemp -d)/old
git -C "$HERE" worktree add -q --detach "$TREE" "$OLD"
trap 'git -C "$HERE" worktree remove --force "$TREE"' EXIT
declare -A rates=([old]="" [new]="")
for i in $(seq 1 "$PAIRS"); do
  for side in old new; do
    dir=$([ "$side" = old ] && echo "$TREE" || echo "$HERE")
    ref=$("$HERE/.venv/bin/python" "$HERE/bench/reference.py")
    log="$OUT/recommend-ab-$side-$i.log"
    (cd "$dir" && PYTHONPATH="$dir" /usr/bin/time -v "$HERE/.venv/bin/python" -c "from recpipe.cli import app; app()" \
      recommend --data-dir "$DATA" "$@" >"$log" 2>&1) || { tail -20 "$log"; exit 1; }
    line=$(grep -E "^scoring [0-9.]+s" "$log")
    echo "$side $i: $line; wall $(grep 'Elapsed' "$log" | awk '{print $NF}'); peak RSS $(( $(grep 'Maximum resident' "$log" | awk '{print $NF}') / 1024 )) MB; $ref"
    rates[$side]+="$(echo "$line" | sed -E 's/.*= ([0-9,]+) users\/s.*/\1/' | tr -d ,) "
  done
done
for side in old new; do
  printf '%s\n' ${rates[$side]} | sort -n | awk -v s="$side" '{a[NR]=$1} END {print s " median users/s: " a[int((NR+1)/2)]}'
done
