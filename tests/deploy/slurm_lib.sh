# slurm_lib.sh — a one-node Slurm cluster for a test (sourced after lib.sh).
#
# slurm_start DIR starts munged (its own key and socket under DIR, so a
# system munged is left alone), slurmctld and slurmd in the foreground as
# children of the test, with deploy/slurm/ci/slurm.conf.in filled in and
# SLURM_CONF pointing at it, and waits until the node takes jobs.
# slurm_stop ends them (by pid) and cancels what is left. Needs root.

slurm_pids=()

slurm_require() {
  [ "$(id -u)" -eq 0 ] || skip "needs root to run slurmctld, slurmd and munged (CI does)"
  local c
  for c in munged slurmctld slurmd sbatch squeue scontrol; do
    command -v "$c" >/dev/null || skip "no $c (Debian packages slurm-wlm and munge; scripts/deps.sh --test)"
  done
}

slurm_start() {
  local d=$1 port=$((40000 + 2 * ($$ % 10000))) host # above the jobs' ports
  host=$(hostname -s)
  mkdir -p "$d/munge" "$d/state" "$d/spool"
  chmod 700 "$d/munge"
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$d/munge/munge.key"
  munged --foreground --force --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" \
    --seed-file="$d/munge/munged.seed" >"$d/munge/munged.out" 2>&1 &
  slurm_pids+=($!)
  sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$d|g" -e "s|@PORT1@|$((port + 1))|g" \
    -e "s|@PORT@|$port|g" "$RW_SRC/deploy/slurm/ci/slurm.conf.in" >"$d/slurm.conf"
  export SLURM_CONF=$d/slurm.conf
  wait_for 10 test -S "$d/munge/munge.socket" || fail "munged did not start: $(cat "$d/munge/munged.log")"
  slurmctld -D -i -f "$SLURM_CONF" >"$d/slurmctld.out" 2>&1 &
  slurm_pids+=($!)
  slurmd -D -f "$SLURM_CONF" >"$d/slurmd.out" 2>&1 &
  slurm_pids+=($!)
  node_idle() { sinfo -h -N -o '%T' | grep -qx idle; }
  wait_for 60 node_idle || {
    tail -n 20 "$d/slurmctld.log" "$d/slurmd.log" "$d"/*.out 2>/dev/null
    fail "the Slurm node never became idle"
  }
}

slurm_stop() {
  local p
  scancel --user=root >/dev/null 2>&1 || true
  wait_for 20 test -z "$(squeue -h 2>/dev/null)" || true
  for p in "${slurm_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${slurm_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait "${slurm_pids[@]}" 2>/dev/null || true
}

# Waits up to $2 seconds for job $1 to leave the queue; prints its state.
slurm_wait_job() {
  local id=$1 secs=$2 end st
  end=$(($(date +%s) + secs))
  while squeue -h -j "$id" 2>/dev/null | grep -q .; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.5
  done
  st=$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  echo "${st:-UNKNOWN}"
}
