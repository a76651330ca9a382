#!/usr/bin/env bash
# Builds the pinned test-cluster binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet) from the Go module proxy
# into a cache outside the checkout, keyed by version, and prints the
# directory. Binaries already present (or in $KUBEBUILDER_ASSETS) are reused.
set -o errexit -o nounset -o pipefail

KUBE_VERSION=v1.34.4
ETCD_VERSION=v3.6.4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MAGEKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magekube}
out=$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION

if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

mkdir -p "$out"
want=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
missing=()
for b in "${want[@]}"; do [[ -x $out/$b ]] || missing+=("k8s.io/kubernetes/cmd/$b"); done
if ((${#missing[@]})); then
  echo "building ${missing[*]} (first time: about 5 minutes on 2 cores)" >&2
  (cd "$here/tools/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out/" "${missing[@]}") >&2
fi
if [[ ! -x $out/etcd ]]; then
  echo "building etcd $ETCD_VERSION" >&2
  (cd "$here/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out/etcd" .) >&2
fi
echo "$out"
