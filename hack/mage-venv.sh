#!/usr/bin/env bash
# Installs the pinned mage-ai (and the Kubernetes client its k8s executor
# imports, at the version mage-ai pins) into a virtualenv cached outside
# the checkout, keyed by version, and prints the virtualenv's python.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

venv=$CACHE/venv-mage-ai-$MAGE_AI_VERSION-py$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ ! -x $venv/bin/python || ! -f $venv/.complete ]]; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  with_progress "a virtualenv with mage-ai $MAGE_AI_VERSION from PyPI ($venv, 1.4 GB)" "2 min" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "mage-ai==$MAGE_AI_VERSION" "kubernetes==$MAGE_KUBERNETES_VERSION" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
