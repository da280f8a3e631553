#!/usr/bin/env bash
# hh-accuracy.sh — the README's HH-RLHF accuracy table, in one command.
#
# Imports ../shared/data/hh-rlhf into a temporary folder; trains the
# all-domain baseline, one model per domain from scratch, and one per domain
# branched from the baseline (--init) and fine-tuned on that domain alone;
# evaluates every model on the eval split of each domain it is for; scores
# the domain-blind rule "the longer reply wins" the same way; and prints a
# markdown table with the model's size and each training's wall time.
#
# It builds nothing: it runs build/rewire (cmake --build build first). The
# trainings run one after another, each with --threads 2. Settings can be
# changed from the environment:
#   SHAPE       model flags       (--d-model 128 --layers 2 --heads 4 --max-len 192)
#   EPOCHS      baseline and per-domain scratch epochs (4)
#   TRAIN       other train flags for those (none: rewire train's defaults)
#   FT_EPOCHS   fine-tuning epochs of the branched models (1)
#   FT          other train flags for them (none: the --init defaults)
#   THREADS (2), REWIRE (build/rewire), HH_DATA (../shared/data/hh-rlhf),
#   KEEP=1 keeps the temporary folder (its path is printed).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rw=${REWIRE:-$root/build/rewire}
data=${HH_DATA:-$root/../shared/data/hh-rlhf}
threads=${THREADS:-2}
shape=${SHAPE:---d-model 128 --layers 2 --heads 4 --max-len 192}
epochs=${EPOCHS:-4}
train_flags=${TRAIN:-}
ft_epochs=${FT_EPOCHS:-1}
ft_flags=${FT:-}

[ -x "$rw" ] || { echo "hh-accuracy: no $rw; build first (cmake --build build)" >&2; exit 1; }
ls "$data"/*.jsonl.gz >/dev/null 2>&1 || { echo "hh-accuracy: no HH data in $data" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hh-accuracy.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "hh-accuracy: keeping $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
hh=$work/hh.jsonl
log=$work/log
start_all=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }

# train NAME ARGS...: trains $work/NAME.safetensors; records its wall time,
# steps and parameters in $work/NAME.info.
train() {
    local name=$1
    shift
    local t0
    t0=$(date +%s.%N)
    echo "hh-accuracy: training $name ..." >&2
    if ! "$rw" train --data "$hh" --out "$work/$name.safetensors" --threads "$threads" \
        --eval-every 0 --log-every 200 "$@" >"$work/$name.out" 2>>"$log"; then
        tail -20 "$log" >&2
        exit 1
    fi
    local secs steps params
    secs=$(elapsed "$t0")
    steps=$(sed -n 's/^\([0-9]*\) steps .*/\1/p' "$work/$name.out")
    params=$(sed -n 's/^wrote [^:]*: [a-z]*, \([0-9.]*\) M parameters.*/\1/p' "$work/$name.out")
    echo "$secs $steps $params" >"$work/$name.info"
    echo "hh-accuracy: $name: $steps steps in $secs s" >&2
}

# acc MODEL|--rule DOMAIN: held-out accuracy of a model (or the rule) on one domain.
acc() {
    local what=(--model "$work/$1.safetensors")
    [ "$1" = rule ] && what=(--rule longer)
    "$rw" eval "${what[@]}" --data "$hh" --domain "$2" --threads "$threads" 2>>"$log" |
        awk -v d="$2" '$1 == d { print $3 }'
}

"$rw" data import "$data"/*.jsonl.gz -o "$hh" 2>>"$log" >&2
# the domains, from the rule's table (every line between the header and "all")
mapfile -t domains < <("$rw" eval --rule longer --data "$hh" 2>>"$log" |
    awk 'NR > 2 && $1 != "all" && $1 != "mean" { print $1 }')
declare -A npairs
while read -r d n; do npairs[$d]=$n; done < <("$rw" eval --rule longer --data "$hh" 2>>"$log" |
    awk 'NR > 2 && $1 != "all" && $1 != "mean" { print $1, $2 }')

# shellcheck disable=SC2086  # the flag lists are meant to split
train baseline $shape --epochs "$epochs" $train_flags
for d in "${domains[@]}"; do
    # shellcheck disable=SC2086
    train "scratch-$d" $shape --epochs "$epochs" --domain "$d" $train_flags
done
for d in "${domains[@]}"; do
    # shellcheck disable=SC2086
    train "branch-$d" --init "$work/baseline.safetensors" --domain "$d" --epochs "$ft_epochs" \
        $ft_flags
done

echo "hh-accuracy: evaluating ..." >&2
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
echo
row domain "eval pairs" "longer reply wins" "all-domain baseline" \
    "per-domain, from scratch" "per-domain, branched from the baseline"
row --- ---: ---: ---: ---: ---:
sums=(0 0 0 0)
for d in "${domains[@]}"; do
    r=$(acc rule "$d")
    b=$(acc baseline "$d")
    s=$(acc "scratch-$d" "$d")
    f=$(acc "branch-$d" "$d")
    row "$d" "${npairs[$d]}" "$r" "$b" "$s" "$f"
    read -r -a sums < <(awk -v a="${sums[*]}" -v r="$r" -v b="$b" -v s="$s" -v f="$f" \
        'BEGIN { split(a, x, " "); print x[1] + r, x[2] + b, x[3] + s, x[4] + f }')
done
n=${#domains[@]}
read -r mr mb ms mf < <(awk -v a="${sums[*]}" -v n="$n" \
    'BEGIN { split(a, x, " "); printf "%.4f %.4f %.4f %.4f\n", x[1]/n, x[2]/n, x[3]/n, x[4]/n }')
row "**mean of domains**" "" "$mr" "**$mb**" "**$ms**" "**$mf**"
echo
awk -v b="$mb" -v s="$ms" -v f="$mf" 'BEGIN {
    printf "Per-domain minus baseline, mean of domains: from scratch %+.1f points, branched %+.1f points.\n", (s - b) * 100, (f - b) * 100 }'
echo
read -r bs bsteps bparams <"$work/baseline.info"
echo "Model: dense pre-LN encoder, \`$shape\`, vocabulary 8192 (trained on the train split): $bparams M parameters."
plural() { [ "$1" = 1 ] && echo "$1 $2" || echo "$1 ${2}s"; }
echo "Baseline and per-domain scratch models: $(plural "$epochs" epoch)${train_flags:+ ($train_flags)}; branched models: $(plural "$ft_epochs" epoch) from the baseline${ft_flags:+ ($ft_flags)}; --threads $threads."
echo
echo "| model | train pairs | steps | wall time (s) |"
echo "|---|---:|---:|---:|"
for name in baseline $(for d in "${domains[@]}"; do echo "scratch-$d"; done) \
    $(for d in "${domains[@]}"; do echo "branch-$d"; done); do
    read -r secs steps _ <"$work/$name.info"
    pairs=$(sed -n 's/.*epochs of \([0-9]*\) pairs.*/\1/p' "$work/$name.out")
    printf '| %s | %s | %s | %s |\n' "$name" "$pairs" "$steps" "$secs"
done
echo
echo "Whole script: $(elapsed "$start_all") s wall."
