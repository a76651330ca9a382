#!/usr/bin/env bash
# Integration tier: a real control plane (etcd, API server, controller
# manager, scheduler), started and stopped by the suite itself. Under the
# race detector: the agent's intake workers, status writers and informers
# run against the real API server (cgo: the detector needs a C compiler).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
export MAGEKUBE_BIN_DIR
command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev >/dev/null; }
CGO_ENABLED=1 go test -race -tags "$GO_TAGS,integration" -count=1 -timeout 15m ./test/integration/...
