#!/usr/bin/env bash
# Release images without Docker or a registry: the agent and runner
# images for linux/amd64 and linux/arm64, one OCI image index each (with
# an SPDX SBOM per platform), as OCI layouts in _output/images/. Push them
# with any OCI tool, e.g. `crane push _output/images/agent ghcr.io/magekube/agent:$(cat VERSION)`.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
with_progress "the agent and runner images for linux/amd64 and linux/arm64" "2 min" \
  go run ./hack/images -out _output/images -version "$(cat VERSION)" -commit "$COMMIT"
