#!/usr/bin/env bash
# test_slurm_add_domain.sh — deploy/slurm/rewire-add-domain.sbatch: two new
# domains added to a served job, one array element each.
#
# Starts the one-node Slurm of slurm_lib.sh, submits rewire-job.sbatch with
# RW_KEEP_SERVING=1 on five synthetic domains, waits for the coordinator to
# report the job done, then submits the array recipe with two new domains
# (made from synthetic data under new names) and waits for both elements to
# complete. The router bundle must then route over seven domains, the
# report must name both, and every element must have left its log.
#
# Needs root. Usage: test_slurm_add_domain.sh BUILD_DIR.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/slurm_lib.sh"

slurm_require

dir=$(mktemp -d /tmp/rw-slurm-add.XXXXXX)
cleanup() {
  local rc=$?
  slurm_stop
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then dump_logs "$dir/shared"; dump_logs "$dir/slurm"; fi
  if [ "${RW_KEEP:-}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# two new domains: synthetic pairs of another seed under new names
"$RW_BIN/rewire" data gen -o "$dir/gen.jsonl" --seed 7 --pairs-per-domain 60 \
  --domains arithmetic,concise >/dev/null
jq -c 'select(.domain == "arithmetic") | .domain = "sums"' "$dir/gen.jsonl" >"$dir/sums.jsonl"
jq -c 'select(.domain == "concise") | .domain = "terse"' "$dir/gen.jsonl" >"$dir/terse.jsonl"
tiny_config "$dir/job.json" 200

slurm_start "$dir/slurm"
out=$dir/shared
job=$(RW_DIR=$out RW_BIN=$RW_BIN RW_KEEP_SERVING=1 sbatch --parsable --ntasks=2 \
  --cpus-per-task=1 --time=10 --output="$dir/sbatch-%j.out" \
  "$RW_SRC/deploy/slurm/rewire-job.sbatch" --pairs-per-domain 60 --vocab 1000 --config "$dir/job.json")
job_done() {
  local ep
  ep=$(sed -n 's/^COORDINATOR=//p' "$out/endpoints" 2>/dev/null)
  [ -n "$ep" ] && "$RW_BIN/rewire-coordinator" health --connect "$ep" | jq -e '.state == "done"'
}
wait_for 300 job_done || fail "job $job never reported done"
check_job_output "$out/out"
say "job $job done and serving after $(elapsed) s"

t_add=$(date +%s.%N)
arr=$(RW_DIR=$out RW_BIN=$RW_BIN sbatch --parsable --array=0-1 --cpus-per-task=1 --time=10 \
  --output="$dir/add-%A_%a.out" "$RW_SRC/deploy/slurm/rewire-add-domain.sbatch" \
  "sums=$dir/sums.jsonl" "terse=$dir/terse.jsonl")
slurm_wait_job "$arr" 240 >/dev/null || fail "array $arr still running after 240 s"
for i in 0 1; do
  st=$(scontrol show job "${arr}_$i" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  [ "$st" = COMPLETED ] || { cat "$dir/add-${arr}_$i.out"; fail "array element $i ended $st"; }
done
took=$(awk -v a="$t_add" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

doms=$("$RW_BIN/rewire" inspect "$out/out/bundles/router" --json | jq -r '.manifest.domains | join(",")')
for d in sums terse; do
  grep -q "$d" <<<"$doms" || fail "the router bundle has no domain $d: $doms"
  grep -q "$d" "$out/out/report.md" || fail "the report does not name $d"
  [ -s "$out/logs/add-$d.log" ] || fail "no log of the worker that added $d"
done
[ "$(tr ',' '\n' <<<"$doms" | wc -l)" -eq 7 ] || fail "the router bundle routes over $doms"
check_job_output "$out/out"
scancel "$job"
say "passed in $(elapsed) s: two domains added by a 2-element array in $took s"
