#!/usr/bin/env bash
# Unit tier: pure packages and the runner on real processes. No cluster.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
go test -tags "$GO_TAGS" -count=1 ./...
