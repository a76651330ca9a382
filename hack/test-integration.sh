#!/usr/bin/env bash
# Integration tier: a real control plane (etcd, API server, controller
# manager, scheduler), of the pinned and of the oldest supported
# Kubernetes, started and stopped by the suite itself. Under the race
# detector: the agent's intake workers, status writers and informers
# run against the real API server (cgo: the detector needs a C compiler).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
# Twice: against the pinned Kubernetes, then against the control plane of
# the oldest supported minor (hack/build-bins.sh oldest).
command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null; }
for bins in "" oldest; do
  MAGEKUBE_BIN_DIR=$(hack/build-bins.sh $bins)
  export MAGEKUBE_BIN_DIR
  echo "integration: control plane $("$MAGEKUBE_BIN_DIR/kube-apiserver" --version)"
  CGO_ENABLED=1 go test -race -tags "$GO_TAGS,integration" -count=1 -timeout 15m ./test/integration/...
done
