#!/bin/bash
# Interleaved rounds of the training-step benchmark against PyTorch.
#
#   bench/speed_rounds.sh [ROUNDS] [STEPS]      (defaults: 8 rounds of 20 steps)
#
# Each round runs bench/torch_train_step.py (one torch thread, OpenBLAS's
# fastest kernel here unless OPENBLAS_CORETYPE says otherwise), then
# build/bench/train_step, so both see the same state of a shared host. Prints
# one line a round (both medians and bests, their ratios, training's share of
# the sgemm rate measured in the same run) and, last, the median over rounds of
# each column. Needs a build (build/bench/train_step) and Debian's
# python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
steps=${2:-20}
core=${OPENBLAS_CORETYPE:-Zen}
[ -x build/bench/train_step ] || {
    echo "speed_rounds: build/bench/train_step is missing; build first" >&2
    exit 1
}
field() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(*(d[k] for k in sys.argv[2:]))" "$@"; }
echo "round time torch_median torch_best rewire_median rewire_best ratio_medians ratio_bests fraction_of_sgemm"
rows=()
for i in $(seq 1 "$rounds"); do
    t=$(OPENBLAS_CORETYPE=$core /usr/bin/python3 bench/torch_train_step.py --steps "$steps" --threads 1 | grep '^{')
    r=$(build/bench/train_step --steps "$steps" | grep '^{')
    read -r tm tb < <(field "$t" pairs_per_s pairs_per_s_best)
    read -r rm rb fr < <(field "$r" pairs_per_s pairs_per_s_best fraction_of_sgemm)
    row=$(/usr/bin/python3 -c "import sys; tm,tb,rm,rb,fr=map(float,sys.argv[1:]); print('%.1f %.1f %.1f %.1f %.2f %.2f %.2f'%(tm,tb,rm,rb,rm/tm,rb/tb,fr))" "$tm" "$tb" "$rm" "$rb" "$fr")
    rows+=("$row")
    echo "$i $(date -u +%H:%M:%S) $row"
done
printf '%s\n' "${rows[@]}" | /usr/bin/python3 -c "
import statistics, sys
cols = list(zip(*(map(float, l.split()) for l in sys.stdin if l.strip())))
print('median - ' + ' '.join('%.2f' % statistics.median(c) for c in cols))"
