#!/usr/bin/env bash
# Builds the agent and runner into bin/, static and version-stamped.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
go build -trimpath -tags "$GO_TAGS" -ldflags "$LDFLAGS" -o bin/ ./cmd/agent ./cmd/runner
echo "built bin/agent bin/runner ($VERSION)"
