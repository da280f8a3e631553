#!/bin/bash
# Interleaved rounds of the training-step benchmark against PyTorch.
#
#   bench/speed_rounds.sh [ROUNDS] [STEPS]      (defaults: 8 rounds of 20 steps)
#
# Each round runs bench/torch_train_step.py (one torch thread), then
# build/bench/train_step, so both see the same state of a shared host, and
# both on the same OpenBLAS kernel: OPENBLAS_CORETYPE if set, else the one
# rewire picks here (`rewire --version`). Prints one line a round (both
# medians and bests, their ratios, training's share of the sgemm rate
# measured in the same run, and the pairs/s of the step's matmuls alone with
# their ratio to PyTorch's median: the most any step that calls OpenBLAS for
# them could reach) and, last, the median over rounds of each column.
# Needs a build (build/bench/train_step) and Debian's python3-torch
# (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
die() {
    echo "speed_rounds: $*" >&2
    exit 1
}
rounds=${1:-8}
steps=${2:-20}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number of at least 1, not '$rounds'"
[[ $steps =~ ^[1-9][0-9]*$ ]] || die "STEPS must be a whole number of at least 1, not '$steps'"
[ -x build/bench/train_step ] && [ -x build/rewire ] || die "build/bench/train_step is missing; build first"
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    OPENBLAS_CORETYPE=$(build/rewire --version | awk '/^openblas/ { for (i = 2; i <= NF; i++) if ($i ~ /^MAX_THREADS/) print $(i - 1) }')
    [ -n "$OPENBLAS_CORETYPE" ] || die "cannot tell which OpenBLAS kernel rewire uses; set OPENBLAS_CORETYPE"
fi
export OPENBLAS_CORETYPE
echo "OpenBLAS kernel $OPENBLAS_CORETYPE for both"
# The last JSON line of a benchmark's output, or a clear error with its output.
json_of() {
    local out
    out=$("$@" 2>&1) || die "$* failed:"$'\n'"$out"
    grep '^{' <<<"$out" | tail -1 | grep . || die "$* printed no JSON line:"$'\n'"$out"
}
field() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(*(d[k] for k in sys.argv[2:]))" "$@"; }
echo "round time torch_median torch_best rewire_median rewire_best ratio_medians ratio_bests fraction_of_sgemm matmuls_alone ratio_matmuls_alone"
rows=()
for i in $(seq 1 "$rounds"); do
    t=$(json_of /usr/bin/python3 bench/torch_train_step.py --steps "$steps" --threads 1)
    r=$(json_of build/bench/train_step --steps "$steps")
    read -r tm tb < <(field "$t" pairs_per_s pairs_per_s_best)
    read -r rm rb fr mm < <(field "$r" pairs_per_s pairs_per_s_best fraction_of_sgemm matmuls_pairs_per_s)
    row=$(/usr/bin/python3 -c "import sys; tm,tb,rm,rb,fr,mm=map(float,sys.argv[1:]); print('%.1f %.1f %.1f %.1f %.2f %.2f %.2f %.1f %.2f'%(tm,tb,rm,rb,rm/tm,rb/tb,fr,mm,mm/tm))" "$tm" "$tb" "$rm" "$rb" "$fr" "$mm")
    rows+=("$row")
    echo "$i $(date -u +%H:%M:%S) $row"
done
printf '%s\n' "${rows[@]}" | /usr/bin/python3 -c "
import statistics, sys
cols = list(zip(*(map(float, l.split()) for l in sys.stdin if l.strip())))
print('median - ' + ' '.join('%.2f' % statistics.median(c) for c in cols))"
