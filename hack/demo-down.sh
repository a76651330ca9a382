#!/usr/bin/env bash
# Removes what `make demo` started, by the names and PIDs it recorded: the
# port-forwards, the kind cluster "magekube" (and its kubeconfig context),
# the shared project directory, and dockerd if the demo started it.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
state=/tmp/magekube-demo
if [[ -f $state/port-forward.pids ]]; then
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$state/port-forward.pids"
fi
if docker info >/dev/null 2>&1; then
  go run -tags "$GO_TAGS" ./test/kind/cmd/kindcluster down magekube
fi
hack/docker.sh down demo
rm -rf "$state" /tmp/magekube-kind-shared
