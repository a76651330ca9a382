#!/usr/bin/env bash
# go vet, gofmt and a pinned staticcheck built from the Go module proxy.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
unformatted=$(gofmt -l cmd pkg test hack 2>/dev/null || true)
if [[ -n $unformatted ]]; then
  echo "gofmt needed:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet -tags "$GO_TAGS,integration,e2e" ./...
# `agent render` runs on laptops: the agent and everything it imports
# build for macOS and Windows (platform pieces live in build-tagged
# files; the other architecture adds nothing the OS does not).
for target in darwin/arm64 windows/amd64; do
  GOOS=${target%/*} GOARCH=${target#*/} go build -tags "$GO_TAGS" -o /dev/null ./cmd/agent
done
if [[ ! -x $TOOLS/staticcheck-$STATICCHECK_VERSION ]]; then
  mkdir -p "$TOOLS"
  GOBIN=$TOOLS/tmp go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  mv "$TOOLS/tmp/staticcheck" "$TOOLS/staticcheck-$STATICCHECK_VERSION"
fi
"$TOOLS/staticcheck-$STATICCHECK_VERSION" -tags "$GO_TAGS,integration,e2e" ./...
echo "lint: ok"
