#!/usr/bin/env bash
# Monitoring tier: the alert rules checked and unit-tested by Prometheus'
# own promtool (built by hack/build-bins.sh); the dashboard's and rules'
# metric names are checked against the agent in the unit tier.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
bin=$(hack/build-bins.sh)
"$bin/promtool" check rules deploy/monitoring/alerts.yaml
(cd deploy/monitoring && "$bin/promtool" test rules alerts_test.yaml)
