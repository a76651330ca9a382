#!/usr/bin/env bash
# Fails when a cluster, the demo or a test left anything behind: cluster
# processes, node bridges or network namespaces, mounts or directories
# under /tmp/magekube-clusters or the e2e project volume, memory cgroups of the runner's tests, kind
# node containers and their shared directories, the demo's port-forwards,
# and a dockerd the scripts started.
set -o errexit -o nounset -o pipefail
left=()
procs=$(ps -eo pid,args | grep -E 'kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|etcd --data-dir|containerd --config|jaeger|kwok' | grep -v -E 'grep|check-clean' || true)
[[ -n $procs ]] && left+=("processes:"$'\n'"$procs")
links=$(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^mk/ {print $2}' || true)
[[ -n $links ]] && left+=("network devices: $links")
netns=$(ip netns list 2>/dev/null | awk '$1 ~ /^mk.*-node-/ {print $1}' || true)
[[ -n $netns ]] && left+=("network namespaces: $netns")
mounts=$(grep -E ' /tmp/(magekube-clusters|magekube-kind-)' /proc/mounts || true)
[[ -n $mounts ]] && left+=("mounts:"$'\n'"$mounts")
dirs=$(ls -A /tmp/magekube-clusters 2>/dev/null || true)
[[ -n $dirs ]] && left+=("under /tmp/magekube-clusters: $dirs")
cgroups=$(ls -d /sys/fs/cgroup/magekube-* /sys/fs/cgroup/*/magekube-* 2>/dev/null || true)
[[ -n $cgroups ]] && left+=("cgroups: $cgroups")
procs=$(ps -eo pid,args | grep -E 'dockerd .*magekube-dockerd|kubectl .*port-forward' | grep -v grep || true)
[[ -n $procs ]] && left+=("processes:"$'\n'"$procs")
if docker info >/dev/null 2>&1; then
  nodes=$(docker ps -a --format '{{.Names}}' | grep -E '^(mk-e2e-|magekube-)' || true)
  [[ -n $nodes ]] && left+=("containers: $nodes")
fi
if ! pgrep -x dockerd >/dev/null; then
  bridges=$(ip -o link show type bridge 2>/dev/null | awk -F': ' '$2 ~ /^(docker0|br-)/ {print $2}' || true)
  [[ -n $bridges ]] && left+=("Docker's bridges with no dockerd: $bridges")
  chains=$(iptables -S 2>/dev/null | grep -c -- '-N DOCKER' || true)
  ((chains > 0)) && left+=("Docker's iptables chains with no dockerd: $chains")
fi
dirs=$(ls -d /tmp/magekube-kind-* /tmp/magekube-demo 2>/dev/null || true)
[[ -n $dirs ]] && left+=("directories: $dirs")
if ((${#left[@]})); then
  printf 'left behind:\n'; printf '%s\n' "${left[@]}"
  exit 1
fi
echo "nothing left behind"
