#!/usr/bin/env bash
# test_manifests_add_domain.sh — deploy/k8s/templates/add-domain-job.yaml
# agrees with the binaries. PENDING issue 5: it runs
# `rewire-worker --domain NAME --data FILE`; until the worker's --help lists
# both flags it skips (exit 77, also under CI=true) and says so.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
help=$("$RW_BIN/rewire-worker" --help)
grep -q -- '--domain' <<<"$help" && grep -q -- '--data' <<<"$help" \
  || pending "issue 5: rewire-worker has no --domain NAME --data FILE yet"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "no python3-yaml for /usr/bin/python3"
/usr/bin/python3 "$RW_SRC/tests/deploy/manifests.py" "$RW_BIN" --add-domain
