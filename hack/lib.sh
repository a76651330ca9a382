# Shared settings for hack/*.sh; source it, do not run it.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MAGEKUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magekube}
TOOLS=$CACHE/tools
STATICCHECK_VERSION=v0.8.2
# urfave_cli_no_docs drops the man-page generator: 5 ms less start-up.
GO_TAGS=urfave_cli_no_docs
export CGO_ENABLED=0
VERSION=$(git -C "$REPO_ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS="-s -w -X github.com/magekube/magekube/pkg/buildinfo.Version=$VERSION -X github.com/magekube/magekube/pkg/buildinfo.Commit=$COMMIT"

# require NAME HINT: fail under CI=true, else skip the caller's tier.
require() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing prerequisite: $1 ($2)" >&2
    return 1
  fi
}

# The pinned Mage release the trigger is tested inside (hack/mage-venv.sh):
# the newest on PyPI when pinned, and it installs on Python 3.11. Its k8s
# executor imports the Kubernetes client of its "all" extra, at this pin.
MAGE_AI_VERSION=0.9.80
MAGE_KUBERNETES_VERSION=33.1.0
# The other releases the python tier runs in, each in the environment of
# its day (hack/mage-constraints): the chart's default and the oldest
# supported. The trigger names the range 0.9.72–0.9.80 when Mage is
# outside it (MAGE_RANGE in integrations/mage/magekube_mage.py).
MAGE_AI_RANGE="0.9.79 0.9.72"
# OpenTelemetry's Python distro, whose auto-instrumentation installs a
# sitecustomize beside the trigger's (hack/otel-venv.sh).
OTEL_DISTRO_VERSION=0.66b2

# with_progress WHAT USUAL CMD...: run CMD, printing every 30 s on stderr
# how long it has been building WHAT and how long it usually takes on 2
# cores, so a slow first build is told from a hung one.
with_progress() {
  local what=$1 usual=$2 start=$SECONDS ticker rc=0
  shift 2
  echo "building $what (first time only; usually $usual on 2 cores)" >&2
  ( while sleep 30; do echo "  … $what: $((SECONDS - start))s so far (usually $usual)" >&2; done ) &
  ticker=$!
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  if ((rc == 0)); then echo "built $what in $((SECONDS - start))s" >&2; fi
  return "$rc"
}
