#!/usr/bin/env bash
# The whole test command (README): lint, unit, python, monitoring, fuzz,
# integration, e2e.
# Under CI=true a missing prerequisite fails the run instead of skipping.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
start=$SECONDS
step() { echo; echo "=== $* ($((SECONDS - start))s)"; }
step lint;        hack/lint.sh
step unit;        hack/test-unit.sh
step python;      hack/test-python.sh
step monitoring;  hack/test-monitoring.sh
step fuzz;        hack/fuzz.sh
step integration; hack/test-integration.sh
step e2e;         hack/test-e2e.sh
step "all tiers passed in $((SECONDS - start))s"
