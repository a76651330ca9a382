#!/usr/bin/env bash
# A short run of every fuzz target (FUZZTIME each: a count of inputs).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
fuzztime=${FUZZTIME:-20000x} # a count, not a duration: a duration can end mid-input and fail with "context deadline exceeded"
for target in pkg/protocol:FuzzParseRequest pkg/protocol:FuzzResultFile pkg/execconfig:FuzzResolve pkg/execconfig:FuzzResolveTemplates pkg/jobspec:FuzzDNSLabel pkg/telemetry:FuzzDecodeSpanFile; do
  pkg=${target%%:*} fn=${target##*:}
  go test -tags "$GO_TAGS" -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "./$pkg"
done
