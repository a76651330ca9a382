#!/usr/bin/env bash
# Benchmarks that exist so far: the runner's overhead (added wall time,
# peak RSS, binary size). The agent's latency and scale benchmarks come
# with issue 8.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
go test -tags "$GO_TAGS" -run '^$' -bench ExecOverhead -benchtime 300x ./pkg/runner
