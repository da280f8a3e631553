#!/usr/bin/env bash
# test_slurm.sh — deploy/slurm/rewire-job.sbatch on a real one-node Slurm.
#
# Starts munged, slurmctld and slurmd with deploy/slurm/ci/slurm.conf.in,
# submits the sbatch script on the synthetic data with tiny models and two
# task slots, waits for it, and checks what it must leave on the shared
# path: the four bundles (verified), the report, the endpoints file and the
# log of every process (coordinator, router service, one per worker, each
# showing that process did its part); then again with RW_CURVE=1, every
# connection keyed. Needs root; skips without it, fails
# under CI=true. Usage: test_slurm.sh BUILD_DIR (RW_KEEP=1 keeps the folder).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/slurm_lib.sh"
slurm_require

dir=$(mktemp -d /tmp/rw-slurm.XXXXXX)
cleanup() {
  local rc=$?
  slurm_stop
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for d in "$dir"/plain "$dir"/curve "$dir/slurm"; do [ -d "$d" ] && dump_logs "$d"; done
  fi
  if [ "${RW_KEEP:-}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
slurm_start "$dir/slurm"
say "Slurm up after $(elapsed) s"

tiny_config "$dir/job.json" 200

# One job in $dir/NAME with the environment in $@ (RW_CURVE=1, say).
run_job() {
  local name=$1 out=$dir/$1
  shift
  local t_submit job state took
  t_submit=$(date +%s.%N)
  job=$(env "$@" RW_DIR="$out" RW_BIN="$RW_BIN" sbatch --parsable --ntasks=2 --cpus-per-task=1 \
    --time=10 --output="$dir/sbatch-%j.out" "$RW_SRC/deploy/slurm/rewire-job.sbatch" \
    --pairs-per-domain 60 --vocab 1000 --config "$dir/job.json")
  say "submitted job $job ($name)"
  state=$(slurm_wait_job "$job" 300) || fail "job $job still queued or running after 300 s"
  took=$(awk -v a="$t_submit" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  cat "$dir/sbatch-$job.out"
  [ "$state" = COMPLETED ] || fail "job $job ended $state"
  check_job_output "$out/out"
  grep -q "^COORDINATOR=tcp://127.0.0.1:" "$out/endpoints" || fail "endpoints: $(cat "$out/endpoints")"
  grep -q "job done" "$out/logs/coordinator.log" || fail "the coordinator log does not say the job is done"
  grep -q "router attempt 1" "$out/logs/router.log" || fail "the router service trained no router"
  for t in 0 1; do
    f=$out/logs/worker-$t.log
    [ -f "$f" ] || fail "no log of worker $t"
    grep -q "w$t-$job registered" "$f" || fail "worker $t never registered: $(tail -5 "$f")"
    grep -q "done: artifact" "$f" || fail "worker $t finished no task"
  done
  say "$name: the sbatch job took $took s from submission to its end"
}

run_job plain
# with RW_CURVE=1 the job makes its keys and every process connects with them
run_job curve RW_CURVE=1
keys=$dir/curve/keys
grep -qx "KEYS=$keys" "$dir/curve/endpoints" || fail "endpoints: $(cat "$dir/curve/endpoints")"
[ "$(stat -c %a "$keys")" = 700 ] || fail "$keys is mode $(stat -c %a "$keys")"
[ "$(stat -c %a "$keys/job.key")" = 600 ] || fail "job.key is mode $(stat -c %a "$keys/job.key")"
grep -q "refused a client" "$dir/curve/logs/coordinator.log" && fail "the coordinator refused one of its own"
say "passed in $(elapsed) s"
