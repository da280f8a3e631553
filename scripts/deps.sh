#!/usr/bin/env bash
# Installs the Debian 12 packages rewire builds, tests and runs with.
# Does nothing when they are all there already; needs root (or sudo) otherwise.
# --test adds what the deploy tests drive: network namespaces (iproute2), a
# one-node Slurm (slurm-wlm, munge), journals and manifests (jq, python3-yaml).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libzmq3-dev libmsgpack-dev libopenblas-dev libuv1-dev
      libcriterion-dev libjansson-dev zlib1g-dev python3-numpy)
[ "${1:-}" = "--test" ] && pkgs+=(iproute2 jq python3-yaml slurm-wlm munge)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "rewire: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
