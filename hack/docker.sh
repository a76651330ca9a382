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
  # What dockerd adds to the host (its bridges, its iptables chains and
  # the FORWARD policy it sets) is taken away again by `down`.
  iptables -S FORWARD 2>/dev/null | head -n 1 >"$state/forward.before" || true
  ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 >"$state/links.before"
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
  # The networks kind made go first (with their bridges), then dockerd.
  for net in $(docker network ls --filter type=custom -q 2>/dev/null); do docker network rm "$net" >/dev/null 2>&1 || true; done
  pid=$(cat "$state/dockerd.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # dockerd's own containerd ends with it. The host gets back its links and
  # iptables rules as they were before dockerd started.
  if [[ -f $state/links.before ]]; then
    for link in $(ip -o link show type bridge | awk -F': ' '{print $2}'); do
      grep -qx "$link" "$state/links.before" || ip link del "$link" 2>/dev/null || true
    done
  fi
  for table in filter nat; do
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A .*(DOCKER|docker0|br-[0-9a-f]{12})' | while read -r rule; do
      # shellcheck disable=SC2086 # the rule's own words
      iptables -t "$table" -D ${rule#-A } 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  if [[ -s $state/forward.before ]]; then
    # shellcheck disable=SC2046 # "-P FORWARD ACCEPT"
    iptables $(cat "$state/forward.before") 2>/dev/null || true
  fi
  rm -f "$state/owner" "$state/links.before" "$state/forward.before"
  echo "docker: stopped dockerd" >&2
  ;;
*)
  echo "usage: hack/docker.sh up|down OWNER" >&2
  exit 2
  ;;
esac
