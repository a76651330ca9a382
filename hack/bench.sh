#!/usr/bin/env bash
# make bench: the agent on the offline control plane with kwok nodes:
# the trigger's notice, dispatch and completion-notice latency against a
# 5 s poller, throughput, memory and restart with many Jobs tracked, Mage's
# own k8s executor against magekube on the same cluster (the pinned
# mage-ai's virtualenv) and on a kind cluster's real nodes, and the
# runner's overhead. A markdown table, then
# one JSON object as the last line. Flags go to test/bench (-only, -peer …).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
MAGEKUBE_MAGE_PYTHON=$(hack/mage-venv.sh)
export MAGEKUBE_BIN_DIR MAGEKUBE_MAGE_PYTHON
owner="bench-$$" # the peer-nodes section's kind cluster needs Docker
trap 'hack/docker.sh down "$owner"' EXIT
hack/docker.sh up "$owner"
# The pipeline section runs the e2e suite's TestPipelineWallTime with these tags.
export MAGEKUBE_GO_TAGS=$GO_TAGS
go run -tags "$GO_TAGS" ./test/bench "$@"
