#!/usr/bin/env bash
# e2e tier: two real nodes (root), started and stopped by the suite; or
# any cluster named by MAGEKUBE_E2E_KUBECONFIG (see hack/kind/).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
export MAGEKUBE_BIN_DIR
if [[ -z ${MAGEKUBE_E2E_KUBECONFIG:-} && $(id -u) == 0 ]]; then
  hack/install-node-deps.sh
fi
go test -tags "$GO_TAGS,e2e" -count=1 -timeout 30m ./test/e2e/...
