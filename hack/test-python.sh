#!/usr/bin/env bash
# The Mage-side trigger (integrations/mage), tested with the system
# Python's unittest against a stand-in of Mage's executor classes.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
if ! command -v python3 >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
  else
    echo "python3 is missing (apt-get install python3)" >&2; exit 1
  fi
fi
python3 -m unittest discover -s integrations/mage/tests
