#!/usr/bin/env bash
# A Docker engine on demand, for kind.
#
#   hack/docker.sh up OWNER    use the engine that answers; else install
#                              Debian's docker.io if dockerd is missing and
#                              start dockerd, recording OWNER as its starter
#   hack/docker.sh down OWNER  stop dockerd if OWNER started it
#
# Where the host's capability bounding set lacks a capability (this
# project's build machines lack CAP_SYS_RESOURCE), `docker run
# --privileged` fails until the default runtime is runc-nocap
# (test/kind/runc-nocap), which drops what the host cannot grant. An engine
# that already works is used untouched and never stopped.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

state=/run/magekube-dockerd
cmd=${1:?usage: hack/docker.sh up|down OWNER}
owner=${2:?usage: hack/docker.sh up|down OWNER}

answers() { timeout 10 docker info >/dev/null 2>&1; }

case $cmd in
up)
  if answers; then
    echo "docker: using the engine that answers" >&2
    exit 0
  fi
  if [[ $(id -u) != 0 ]]; then
    echo "docker: no engine answers, and starting one needs root" >&2
    exit 1
  fi
  if ! command -v dockerd >/dev/null; then
    echo "docker: installing Debian's docker.io (about 10 s)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io >/dev/null; }
  fi
  mkdir -p "$state"
  args=(--host unix:///var/run/docker.sock --pidfile "$state/dockerd.pid")
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  if [[ $bnd != 000001ffffffffff ]]; then
    wrapper=$CACHE/bin-runc-nocap/runc-nocap
    mkdir -p "${wrapper%/*}"
    (cd "$REPO_ROOT" && go build -trimpath -o "$wrapper" ./test/kind/runc-nocap)
    args+=(--add-runtime "nocap=$wrapper" --default-runtime nocap)
    echo "docker: capability bounding set $bnd lacks some; default runtime runc-nocap" >&2
  fi
  dockerd "${args[@]}" >"$state/dockerd.log" 2>&1 &
  echo "$owner" >"$state/owner"
  for _ in $(seq 60); do
    if answers; then
      echo "docker: started dockerd (pid $(cat "$state/dockerd.pid"), log $state/dockerd.log)" >&2
      exit 0
    fi
    sleep 1
  done
  echo "docker: dockerd did not answer within 60 s; see $state/dockerd.log" >&2
  exit 1
  ;;
down)
  [[ -f $state/owner && $(cat "$state/owner") == "$owner" ]] || exit 0
  pid=$(cat "$state/dockerd.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # dockerd's own containerd ends with it; a shim left by a killed dockerd
  # holds nothing of ours once the containers are gone.
  rm -f "$state/owner"
  echo "docker: stopped dockerd" >&2
  ;;
*)
  echo "usage: hack/docker.sh up|down OWNER" >&2
  exit 2
  ;;
esac
