#!/usr/bin/env bash
# The Mage-side trigger (integrations/mage) inside the pinned mage-ai:
# Mage's own project layout, database, migrations and scheduler entry
# points. The trigger is installed the way the Mage container installs it,
# by sitecustomize on PYTHONPATH (Mage's job-queue processes load it too).
# Then the parity suite: Mage's own Job against agent render's, and the
# trigger beside OpenTelemetry's auto-instrumentation (its own sitecustomize).
# The same suite then runs inside the other releases of the supported
# range (MAGE_AI_RANGE), each in the environment of its day.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
if ! command -v python3 >/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
python=$(hack/mage-venv.sh)
MAGEKUBE_OTEL_PYTHON=$(hack/otel-venv.sh)
export MAGEKUBE_OTEL_PYTHON
# The parity suite compares Mage's Job with agent render's.
go build -tags "$GO_TAGS" -o "$REPO_ROOT/bin/agent" ./cmd/agent
export MAGEKUBE_AGENT=$REPO_ROOT/bin/agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Mage writes its logs and SQLite files under the working directory.
cd "$work"
rc=0
suite() { # suite PYTHON LABEL: the tier's tests inside one mage-ai
  local log=$work/log-$2 start=$SECONDS
  mkdir -p "$work/$2"
  (cd "$work/$2" && PYTHONPATH=$REPO_ROOT/integrations/mage "$1" -m unittest discover -v -s "$REPO_ROOT/integrations/mage/tests" -p 'test_*.py') >"$log" 2>&1 || rc=1
  echo "=== inside mage-ai $2 ($((SECONDS - start))s)"
  # Mage logs every step; show unittest's lines and anything else it printed.
  grep -v -E '^(INFO|DEBUG|WARNING|ERROR):[^ ]*:\{|Warning|^\s*warnings.warn|^\s*$' "$log" || true
}
suite "$python" "$MAGE_AI_VERSION"
# The other releases of the range, each in the environment of its day
# (hack/mage-constraints); OpenTelemetry's overlay is the newest's only.
unset MAGEKUBE_OTEL_PYTHON
for version in $MAGE_AI_RANGE; do
  suite "$("$REPO_ROOT/hack/mage-venv.sh" "$version")" "$version"
done
exit "$rc"
