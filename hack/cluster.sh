#!/usr/bin/env bash
# cluster.sh up [NODES [FAKE_NODES]] | down [NAME] — the offline test cluster for humans.
# down NAME removes only that cluster (make demo-down: the demo's); down
# alone removes every cluster and the leftovers of crashed runs.
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
    if [[ -n ${2:-} ]]; then
      go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster down --name "$2"
    else
      go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster down
      rm -rf /tmp/magekube-clusters/dev-images
    fi
    ;;
  *) echo "usage: $0 up [NODES [FAKE_NODES]] | down [NAME]" >&2; exit 2 ;;
esac
