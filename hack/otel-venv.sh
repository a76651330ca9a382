#!/usr/bin/env bash
# A virtualenv with OpenTelemetry's Python distro (its auto-instrumentation
# installs a sitecustomize, as the trigger does) on top of the pinned
# mage-ai's (hack/mage-venv.sh, through a .pth file), cached outside the
# checkout; prints its python. For the trigger's start-up hook tests.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mage_python=$(hack/mage-venv.sh)
site=$("$mage_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
venv=$CACHE/venv-otel-$OTEL_DISTRO_VERSION-over-mage-ai-$MAGE_AI_VERSION
if [[ ! -x $venv/bin/python || ! -f $venv/.complete ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  echo "$site" >"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mage-ai.pth"
  with_progress "a virtualenv with opentelemetry-distro $OTEL_DISTRO_VERSION over mage-ai $MAGE_AI_VERSION" "10 s" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check "opentelemetry-distro==$OTEL_DISTRO_VERSION" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
