#!/usr/bin/env bash
# hack/mage-venv.sh [VERSION]: installs mage-ai (default: the pinned
# MAGE_AI_VERSION, and the Kubernetes client its k8s executor imports, at
# the version mage-ai pins; another VERSION with its constraints file,
# hack/mage-constraints/VERSION.txt) into a virtualenv cached outside the
# checkout, keyed by version, and prints the virtualenv's python.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version=${1:-$MAGE_AI_VERSION}
pins=("kubernetes==$MAGE_KUBERNETES_VERSION")
if [[ $version != "$MAGE_AI_VERSION" ]]; then
  constraints=$REPO_ROOT/hack/mage-constraints/$version.txt
  [[ -f $constraints ]] || { echo "no constraints file for mage-ai $version: $constraints" >&2; exit 1; }
  pins=(kubernetes -c "$constraints")
fi
venv=$CACHE/venv-mage-ai-$version-py$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ ! -x $venv/bin/python || ! -f $venv/.complete ]]; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  with_progress "a virtualenv with mage-ai $version from PyPI ($venv, 1.4 GB)" "2 min" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check "mage-ai==$version" "${pins[@]}" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
