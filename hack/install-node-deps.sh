#!/usr/bin/env bash
# Installs what a real test node needs from Debian's packages, if missing:
# containerd (with ctr), runc, the CNI plugins, iptables, iproute2, util-linux.
set -o errexit -o nounset -o pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "real nodes need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
