#!/usr/bin/env bash
# test_manifests.sh — the Kubernetes manifests, systemd units and the
# Containerfile agree with the built binaries (manifests.py says how).
# Needs Debian's python3-yaml (scripts/deps.sh --test); the python3 first on
# PATH may be another interpreter, so /usr/bin/python3 it is.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "no python3-yaml for /usr/bin/python3"
/usr/bin/python3 "$RW_SRC/tests/deploy/manifests.py" "$RW_BIN"
