#!/usr/bin/env bash
# test_netns.sh — one job across three hosts, and a host cut off mid-task.
#
# Three network namespaces stand for three machines: "c" runs the
# coordinator and the router service, "h1" and "h2" one worker each. A
# veth link joins each worker host to a bridge in c, on the private subnet
# 10.77.0.0/24, and everything talks tcp to 10.77.0.1. Once h1 is training
# a task, its link goes down (a pulled cable: no reset, just silence); the
# coordinator must lose h1 within its timeout and lease the task again to
# h2. The link comes back; h1 must register again and finish tasks; the job
# must end with its four bundles and the report, no task done twice. Every
# connection uses CURVE keys (rewire keys new), the coordinator admitting
# only the router service and the two workers.
#
# Needs root (ip netns); skips without it, fails under CI=true. Usage:
# test_netns.sh BUILD_DIR. RW_KEEP=1 keeps the folder with every log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root to make network namespaces (run it as root; CI does)"
command -v ip >/dev/null || skip "no ip command (Debian package iproute2)"
command -v jq >/dev/null || skip "no jq (Debian package jq)"

id=$$
C=rw-c-$id H1=rw-h1-$id H2=rw-h2-$id
dir=$(mktemp -d /tmp/rw-netns.XXXXXX)
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$C" "$H1" "$H2"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then dump_logs "$dir"; fi
  if [ "${RW_KEEP:-}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# ---- the three hosts ----
ip netns add "$C" || skip "cannot make network namespaces here"
ip netns add "$H1"
ip netns add "$H2"
ip -n "$C" link set lo up
ip -n "$C" link add br0 type bridge
ip -n "$C" addr add 10.77.0.1/24 dev br0
ip -n "$C" link set br0 up
for h in 1 2; do
  ns=rw-h$h-$id
  ip link add "rwc$h-$id" type veth peer name "rwh$h-$id"
  ip link set "rwc$h-$id" netns "$C"
  ip link set "rwh$h-$id" netns "$ns"
  ip -n "$C" link set "rwc$h-$id" master br0 up
  ip -n "$ns" link set "rwh$h-$id" name eth0
  ip -n "$ns" addr add "10.77.0.1$h/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done

# ---- CURVE keys: every connection encrypted, only the three admitted ----
mkdir "$dir/allow"
for k in coord router h1 h2; do
  "$RW_BIN/rewire" keys new "$dir/$k" >/dev/null || fail "rewire keys new $k"
done
cp "$dir/router.pub" "$dir/h1.pub" "$dir/h2.pub" "$dir/allow/"

# ---- the job: tasks of about a second each, loss noticed within 1.5 s ----
EP=tcp://10.77.0.1:5555
tiny_config "$dir/job.json" 5000
fast=(--timeout-ms 1500 --backoff-max-ms 500)
ip netns exec "$C" "$RW_BIN/rewire-coordinator" serve --state "$dir/state" --out "$dir/out" \
  --bind tcp://10.77.0.1:5555 --pairs-per-domain 60 --vocab 1000 --config "$dir/job.json" \
  --heartbeat-ms 250 --timeout-ms 1500 --key "$dir/coord.key" --allow "$dir/allow" \
  >"$dir/coordinator.log" 2>&1 &
cpid=$!
pids+=("$cpid")
wait_for 30 ip netns exec "$H1" "$RW_BIN/rewire-coordinator" health --connect "$EP" --quiet \
  --key "$dir/coord.key" || fail "the coordinator does not answer from h1"
ip netns exec "$H1" "$RW_BIN/rewire-coordinator" health --connect "$EP" --quiet --timeout-ms 500 \
  && fail "the coordinator answered a probe without CURVE"
ip netns exec "$C" "$RW_BIN/rewire-router" --connect "$EP" --bind tcp://10.77.0.1:5556 \
  --bundles "$dir/out/bundles" --id router --cache "$dir/cache-router" "${fast[@]}" \
  --server-key "$dir/coord.pub" --key "$dir/router.key" >"$dir/router.log" 2>&1 &
pids+=($!)
for h in 1 2; do
  ip netns exec "rw-h$h-$id" "$RW_BIN/rewire-worker" --connect "$EP" --id "h$h" \
    --cache "$dir/cache-h$h" "${fast[@]}" --server-key "$dir/coord.pub" --key "$dir/h$h.key" \
    >"$dir/worker-h$h.log" 2>&1 &
  pids+=($!)
done
wait_for 20 ip netns exec "$H2" "$RW_BIN/rewire-worker" health --connect "$EP" --id h1 --quiet \
  --server-key "$dir/coord.pub" --key "$dir/h2.key" || fail "h1 never registered"
wait_for 10 ip netns exec "$C" "$RW_BIN/rewire-router" health --connect tcp://10.77.0.1:5556 \
  --quiet --server-key "$dir/router.pub" || fail "the router service does not answer"

# ---- cut h1 off while it trains ----
h1_training() {
  jq -e '.workers[] | select(.id == "h1" and (.step // 0) > 0)' "$dir/state/status.json"
}
wait_for 60 h1_training || fail "h1 never trained a task"
t_cut=$(date +%s.%N)
ip -n "$H1" link set eth0 down
say "cut h1's link while it trained task $(jq '.workers[] | select(.id == "h1") | .task' \
  "$dir/state/status.json")"

# The journal's records so far (its complete lines: it is being appended to),
# filtered by the jq program $1 over all of them as one array.
journal() {
  local j=$dir/state/journal.jsonl
  head -n "$(wc -l <"$j")" "$j" | jq -s "${@:2}" "$1"
}
# What h1 held when it fell silent (the task it trained, and any it had
# queued, unless one ended just before the cut) is taken back from it.
lost='map(select(.ev == "release" and .worker == "h1" and .why == "silent past the timeout"))'
released() { journal "$lost | length > 0" -e; }
wait_for 20 released || fail "the coordinator never took h1's tasks back"
task=$(journal "$lost[0].task")
t_lost=$(journal "$lost[0].ts")
again='map(select(.ev == "lease" and .task == $t and .worker != "h1"))'
releases() { journal "$again | length > 0" -e --argjson t "$task"; }
wait_for 60 releases || fail "task $task was never leased again"
t_again=$(journal "$again[0].ts" --argjson t "$task")
again_to=$(journal "$again[0] | \"\\(.worker) (attempt \\(.attempt))\"" -r --argjson t "$task")
grep -q "worker h1 lost (silent past the timeout)" "$dir/coordinator.log" \
  || fail "the coordinator did not lose h1 by its timeout"

# ---- restore the link: h1 registers again and takes work ----
sleep 2 # long enough for h1 to give up on the coordinator too
t_back=$(date +%s.%N)
ip -n "$H1" link set eth0 up
say "restored h1's link"
rejoined() { [ "$(grep -c 'worker h1 joined' "$dir/coordinator.log")" -ge 2 ]; }
wait_for 30 rejoined || fail "h1 did not register again"
t_rejoin=$(date +%s.%N)

# ---- the end of the job ----
for _ in $(seq 1 600); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$cpid" 2>/dev/null && fail "the job did not finish in 120 s"
wait "$cpid" || fail "the coordinator exited with $?"
check_job_output "$dir/out"

# h1 finished tasks after its link came back
after=$(journal 'map(select(.ev == "done" and .worker == "h1" and .ts > $b)) | length' \
  --argjson b "$t_back")
[ "$after" -ge 1 ] || fail "h1 rejoined but finished no task after the link came back"
# no task was done twice, every task was done
twice=$(journal 'map(select(.ev == "done")) | group_by(.task) | map(select(length > 1)) | length')
[ "$twice" -eq 0 ] || fail "$twice tasks were done twice"
total=$(journal 'map(select(.ev == "task")) | length')
done_n=$(journal 'map(select(.ev == "done")) | length')
[ "$done_n" -eq "$total" ] || fail "$done_n of $total tasks done"

rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say "h1 lost $(rel "$t_cut" "$t_lost") s after the cut; task $task leased again to $again_to" \
  "$(rel "$t_cut" "$t_again") s after the cut"
say "h1 registered again within $(rel "$t_back" "$t_rejoin") s of the link coming back and" \
  "finished $after tasks after it"
say "passed in $(elapsed) s: $done_n tasks, none done twice, 4 bundles and the report"
