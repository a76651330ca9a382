#!/usr/bin/env bash
# cluster.sh up [NODES [FAKE_NODES]] | down — the offline test cluster for humans.
# up prints `export KUBECONFIG=…` as its last line.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
case ${1:-} in
  up)
    nodes=${2:-0} fake=${3:-0}
    bins=$(hack/build-bins.sh)
    if ((nodes > 0)); then hack/install-node-deps.sh; fi
    go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster up --bin-dir "$bins" --nodes "$nodes" --fake-nodes "$fake"
    ;;
  down)
    go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster down
    rm -rf /tmp/magekube-clusters/dev-images
    ;;
  *) echo "usage: $0 up [NODES [FAKE_NODES]] | down" >&2; exit 2 ;;
esac
