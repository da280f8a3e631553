#!/usr/bin/env bash
# test_manifests_add_domain.sh — deploy/k8s/templates/add-domain-job.yaml
# agrees with the binaries (`rewire-worker --domain NAME --data FILE`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "no python3-yaml for /usr/bin/python3"
/usr/bin/python3 "$RW_SRC/tests/deploy/manifests.py" "$RW_BIN" --add-domain
