#!/usr/bin/env bash
# e2e tier on kind: the suite builds the node image (test/kind, offline,
# cached by version), creates a kind cluster through kind's Go API, runs,
# and deletes it. A Docker engine is started here when none answers, and
# stopped again if this script started it. MAGEKUBE_E2E_KUBECONFIG names
# any other cluster instead.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
export MAGEKUBE_BIN_DIR
if [[ -z ${MAGEKUBE_E2E_KUBECONFIG:-} ]]; then
  owner="e2e-$$"
  trap 'hack/docker.sh down "$owner"' EXIT
  hack/docker.sh up "$owner"
fi
go test -tags "$GO_TAGS,e2e" -count=1 -timeout 40m ./test/e2e/...
