#!/usr/bin/env bash
# Builds the pinned test-cluster binaries from the Go module proxy into a
# cache outside the checkout, keyed by version, and prints one directory
# holding all of them: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, jaeger (v2 all-in-one) and kwok. Each tool is
# built only when its versioned directory lacks it; etcd and the Kubernetes
# binaries are taken from $KUBEBUILDER_ASSETS when they are there.
set -o errexit -o nounset -o pipefail

KUBE_VERSION=v1.34.4
ETCD_VERSION=v3.6.4
JAEGER_VERSION=v1.76.0
KWOK_VERSION=v0.8.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MAGEKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magekube}

# build DIR MODULE_DIR OUT_NAME... PKG...: go build into DIR.
build() {
  local dir=$1 mod=$2 what=$3; shift 3
  echo "building $what (first time only)" >&2
  (cd "$here/tools/$mod" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/" "$@") >&2
}

kube=$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION
if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]]; then
  kube=$KUBEBUILDER_ASSETS
else
  mkdir -p "$kube"
  missing=()
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    [[ -x $kube/$b ]] || missing+=("k8s.io/kubernetes/cmd/$b")
  done
  if ((${#missing[@]})); then
    build "$kube" k8s "Kubernetes $KUBE_VERSION: about 10 minutes on 2 cores" "${missing[@]}"
  fi
  [[ -x $kube/etcd ]] || build "$kube" etcd "etcd $ETCD_VERSION" .
fi

jaeger=$cache/bin-jaeger-$JAEGER_VERSION
[[ -x $jaeger/jaeger ]] || build "$jaeger" jaeger "Jaeger $JAEGER_VERSION: about 4 minutes" github.com/jaegertracing/jaeger/cmd/jaeger
kwok=$cache/bin-kwok-$KWOK_VERSION
[[ -x $kwok/kwok ]] || build "$kwok" kwok "kwok $KWOK_VERSION: about 2 minutes" sigs.k8s.io/kwok/cmd/kwok

# One directory with every binary, as symlinks into the versioned builds.
view=$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-jaeger-$JAEGER_VERSION-kwok-$KWOK_VERSION
mkdir -p "$view"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  ln -sfn "$kube/$b" "$view/$b"
done
ln -sfn "$jaeger/jaeger" "$view/jaeger"
ln -sfn "$kwok/kwok" "$view/kwok"
echo "$view"
