#!/usr/bin/env bash
# A short run of every fuzz target (FUZZTIME each, default 10s).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
fuzztime=${FUZZTIME:-20000x} # a count, not a duration: a duration can end mid-input and fail with "context deadline exceeded"
for target in pkg/protocol:FuzzParseRequest pkg/execconfig:FuzzResolve pkg/inherit:FuzzDNSLabel; do
  pkg=${target%%:*} fn=${target##*:}
  go test -tags "$GO_TAGS" -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "./$pkg"
done
