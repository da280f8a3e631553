# lib.sh — helpers the deploy tests share (sourced, not run).
#
# Each test gets its build directory as $1 (CTest passes it), writes into a
# fresh temporary folder it removes on exit (kept, with every log, when
# RW_KEEP=1), and exits 0 (pass), 1 (fail) or 77 (skipped: CTest's
# SKIP_RETURN_CODE). A test that cannot run where it must (CI=true) fails
# instead of skipping.

RW_BIN=${1:?usage: $0 BUILD_DIR}
RW_BIN=$(cd "$RW_BIN" && pwd)
RW_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T0=$(date +%s.%N)

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}
# Skips, or fails under CI=true where the test must run.
skip() {
  if [ "${CI:-}" = "true" ]; then fail "cannot run in CI: $*"; fi
  say "skipped: $*"
  exit 77
}
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# A job configuration for tiny models: every task takes $2 steps.
tiny_config() {
  cat >"$1" <<JSON
{"all": {"model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "max_len": 32},
         "train": {"max_batch": 8}, "epochs": 1000, "max_steps": $2}}
JSON
}

# Waits up to $1 seconds for the command in the remaining arguments to succeed.
wait_for() {
  local secs=$1
  shift
  local end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# The four bundles and the report of a finished job in $1, each bundle
# verified by `rewire inspect` (checksums of every file).
check_job_output() {
  local out=$1 k
  for k in baseline moe router adapter; do
    [ -f "$out/bundles/$k/manifest.json" ] || fail "no bundle $k in $out/bundles"
    "$RW_BIN/rewire" inspect "$out/bundles/$k" >/dev/null 2>&1 || fail "rewire inspect $out/bundles/$k"
  done
  [ -s "$out/report.md" ] || fail "no report in $out"
  [ -s "$out/report.json" ] || fail "no report.json in $out"
}

# Prints the last lines of every log in $1 (for a failing test).
dump_logs() {
  local f
  for f in "$1"/*.log "$1"/*/*.log; do
    [ -f "$f" ] || continue
    echo "---- $f (last 25 lines)"
    tail -n 25 "$f"
  done
}
