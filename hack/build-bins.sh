#!/usr/bin/env bash
# Builds the pinned test-cluster binaries from the Go module proxy into a
# cache outside the checkout, keyed by version, and prints one directory
# holding all of them: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl, kubeadm, kube-proxy, coredns, jaeger
# (v2 all-in-one), kwok, promtool, helm (4) and kustomize. Each tool is
# built only when its versioned directory lacks it; etcd and the Kubernetes
# binaries are taken from $KUBEBUILDER_ASSETS when they are there.
#
# `hack/build-bins.sh oldest` prints the same directory with the control
# plane (kube-apiserver, kube-controller-manager, kube-scheduler) of the
# oldest Kubernetes minor magekube supports, $KUBE_OLDEST_VERSION: the
# integration tier runs against both.
set -o errexit -o nounset -o pipefail

KUBE_VERSION=v1.34.4
# The oldest supported minor: 1.30, the oldest one the big clouds still
# run (extended support). The agent needs 1.27+ (the Job controller's
# batch.kubernetes.io/controller-uid label seals results).
KUBE_OLDEST_VERSION=v1.30.14
ETCD_VERSION=v3.6.5
JAEGER_VERSION=v1.76.0
KWOK_VERSION=v0.8.0
COREDNS_VERSION=v1.12.1
PROMETHEUS_VERSION=v0.316.0 # Prometheus 3.16.0's Go module version
HELM_VERSION=v4.3.2
KUSTOMIZE_VERSION=v5.8.1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"
cache=$CACHE

# build DIR MODULE_DIR WHAT USUAL PKG...: go build into DIR, with progress
# (and the build tags in $TAGS, the linker flags in $LDFLAGS).
build() {
  local dir=$1 mod=$2 what=$3 usual=$4; shift 4
  with_progress "$what" "$usual" bash -c 'cd "$1" && shift && CGO_ENABLED=0 go build -trimpath -tags "${TAGS:-}" -ldflags="-s ${LDFLAGS:-}" -o "$@" >&2' _ "$here/tools/$mod" "$dir/" "$@"
}

# kube_version V: the linker flags that make Kubernetes binaries report
# version V (`--version`, the API server's /version).
kube_version() {
  local v=$1 minor=${1#v*.}
  minor=${minor%%.*}
  echo "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
}

kube=$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION
if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]]; then
  kube=$KUBEBUILDER_ASSETS
else
  mkdir -p "$kube"
  missing=()
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kubeadm kube-proxy; do
    [[ -x $kube/$b ]] || missing+=("k8s.io/kubernetes/cmd/$b")
  done
  if ((${#missing[@]})); then
    LDFLAGS=$(kube_version "$KUBE_VERSION") build "$kube" k8s "Kubernetes $KUBE_VERSION (${missing[*]##*/})" "9 min" "${missing[@]}"
  fi
  [[ -x $kube/etcd ]] || build "$kube" etcd "etcd $ETCD_VERSION" "1 min" .
fi

jaeger=$cache/bin-jaeger-$JAEGER_VERSION
[[ -x $jaeger/jaeger ]] || build "$jaeger" jaeger "Jaeger $JAEGER_VERSION" "3 min" github.com/jaegertracing/jaeger/cmd/jaeger
kwok=$cache/bin-kwok-$KWOK_VERSION
[[ -x $kwok/kwok ]] || build "$kwok" kwok "kwok $KWOK_VERSION" "1 min" sigs.k8s.io/kwok/cmd/kwok
coredns=$cache/bin-coredns-$COREDNS_VERSION
[[ -x $coredns/coredns ]] || build "$coredns" coredns "CoreDNS $COREDNS_VERSION (for the kind node image)" "4 min" github.com/coredns/coredns
promtool=$cache/bin-promtool-$PROMETHEUS_VERSION
# remove_all_sd: promtool without the cloud service-discovery plugins, which
# rule checks and rule unit tests do not use.
[[ -x $promtool/promtool ]] || TAGS=remove_all_sd build "$promtool" prometheus "promtool $PROMETHEUS_VERSION" "2 min" github.com/prometheus/prometheus/cmd/promtool

helm=$cache/bin-helm-$HELM_VERSION
[[ -x $helm/helm ]] || LDFLAGS="-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" build "$helm" helm "Helm $HELM_VERSION (the Helm routes)" "2 min" helm.sh/helm/v4/cmd/helm
kustomize=$cache/bin-kustomize-$KUSTOMIZE_VERSION
[[ -x $kustomize/kustomize ]] || build "$kustomize" kustomize "kustomize $KUSTOMIZE_VERSION (the helmCharts route)" "1 min" sigs.k8s.io/kustomize/kustomize/v5

# One directory with every binary, as symlinks into the versioned builds.
view=$cache/bin-k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-jaeger-$JAEGER_VERSION-kwok-$KWOK_VERSION-coredns-$COREDNS_VERSION-prometheus-$PROMETHEUS_VERSION-helm-$HELM_VERSION-kustomize-$KUSTOMIZE_VERSION
mkdir -p "$view"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kubeadm kube-proxy; do
  [[ -x $kube/$b ]] && ln -sfn "$kube/$b" "$view/$b"
done
ln -sfn "$jaeger/jaeger" "$view/jaeger"
ln -sfn "$kwok/kwok" "$view/kwok"
ln -sfn "$coredns/coredns" "$view/coredns"
ln -sfn "$promtool/promtool" "$view/promtool"
ln -sfn "$helm/helm" "$view/helm"
ln -sfn "$kustomize/kustomize" "$view/kustomize"
if [[ ${1:-} == oldest ]]; then
  old=$cache/bin-k8s-$KUBE_OLDEST_VERSION
  mkdir -p "$old"
  missing=()
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    [[ -x $old/$b ]] || missing+=("k8s.io/kubernetes/cmd/$b")
  done
  if ((${#missing[@]})); then
    LDFLAGS=$(kube_version "$KUBE_OLDEST_VERSION") build "$old" k8s-oldest "Kubernetes $KUBE_OLDEST_VERSION, the oldest supported control plane (${missing[*]##*/})" "6 min" "${missing[@]}"
  fi
  oldview=$view-control-plane-$KUBE_OLDEST_VERSION
  mkdir -p "$oldview"
  for f in "$view"/*; do ln -sfn "$(readlink "$f")" "$oldview/${f##*/}"; done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do ln -sfn "$old/$b" "$oldview/$b"; done
  view=$oldview
elif [[ -n ${1:-} ]]; then
  echo "build-bins.sh: unknown argument $1 (want nothing, or oldest)" >&2
  exit 2
fi
echo "$view"
