#!/usr/bin/env bash
# make bench: the agent on the offline control plane with kwok nodes
# (dispatch and completion-notice latency against a 5 s poller,
# throughput, memory and restart with many Jobs tracked) and the runner's
# overhead. A markdown table, then one JSON object as the last line.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
# The Mage side first: how soon the trigger learns that a run ended.
python3 integrations/mage/bench_trigger.py 1000
echo
MAGEKUBE_BIN_DIR=$(hack/build-bins.sh)
export MAGEKUBE_BIN_DIR
go run -tags "$GO_TAGS" ./test/bench "$@"
