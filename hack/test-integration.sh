#!/usr/bin/env bash
# Integration tier: a real control plane (etcd, API server, controller
# manager, scheduler), started and stopped by the suite itself.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
export MAGEKUBE_BIN_DIR
go test -tags "$GO_TAGS,integration" -count=1 -timeout 10m ./test/integration/...
