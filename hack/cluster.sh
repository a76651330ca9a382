#!/usr/bin/env bash
# cluster.sh up [FAKE_NODES] | down [NAME] — the control-plane test cluster
# (what the integration tier and the benchmarks run on) for humans. down
# NAME removes only that cluster; down alone removes every cluster and the
# leftovers of crashed runs. up prints `export KUBECONFIG=…` as its last
# line. A cluster with real nodes is kind's: make demo.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
case ${1:-} in
  up)
    bins=$(hack/build-bins.sh)
    go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster up --bin-dir "$bins" --fake-nodes "${2:-0}"
    ;;
  down)
    go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster down ${2:+--name "$2"}
    ;;
  *) echo "usage: $0 up [FAKE_NODES] | down [NAME]" >&2; exit 2 ;;
esac
