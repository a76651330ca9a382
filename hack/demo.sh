#!/usr/bin/env bash
# The main job end to end on kind (root): a kind cluster "magekube" on the
# node image built here, the real Mage server (the pinned mage-ai) with the
# agent sidecar and the Mage-side trigger, and Jaeger, deployed with
# `kubectl apply -k` from deploy/manifests/examples/mage-stack. A pipeline
# of three blocks with executor_type k8s is triggered through Mage's own
# API; each block runs as a Job; every outcome and its trace is printed.
# Mage's UI stays on 127.0.0.1:6789 and Jaeger's on 127.0.0.1:16686;
# `make demo-down` removes it all.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

state=/tmp/magekube-demo
shared=/tmp/magekube-kind-shared # every node mounts it: the project volume, /home/src in the pods
bins=$(hack/build-bins.sh)
export PATH=$bins:$PATH MAGEKUBE_BIN_DIR=$bins # the pinned kubectl
hack/demo-down.sh # a demo still up from an earlier run
mkdir -p "$state"
hack/docker.sh up demo
hack/build.sh >/dev/null
go run -tags "$GO_TAGS" ./test/kind/cmd/kindcluster demo-up "$state/work"
kubectl config use-context kind-magekube >/dev/null

kubectl create namespace mage >/dev/null
kubectl apply -k "$state/work/overlay" >/dev/null
rm -rf "$state/work/images"
kubectl -n mage rollout status deployment/postgres --timeout=120s
kubectl -n mage rollout status deployment/mage --timeout=300s
kubectl -n mage rollout status deployment/jaeger --timeout=120s
# kubectl port-forward exits when a connection to the pod fails (Mage
# restarting, say): forward (re)starts one that is not running.
declare -A forwards=()
forward() { # SERVICE PORT
  local pid=${forwards[$2]:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && return
  nohup kubectl -n mage port-forward --address 127.0.0.1 "svc/$1" "$2" >>"$state/port-forward-$2.log" 2>&1 &
  forwards[$2]=$!
  echo $! >>"$state/port-forward.pids"
  sleep 1
}
forward mage 6789
forward jaeger 16686

key=zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2 # Mage's own web app's client id, which its API asks for
mage_api() { # METHOD PATH [JSON]; logged in once $token is set
  curl -sf -m 30 -X "$1" "http://127.0.0.1:6789/api/$2" -H "X-API-KEY: $key" ${token:+-H "Cookie: oauth_token=$token"} \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
token=
for _ in $(seq 1 150); do
  forward mage 6789
  token=$(mage_api POST sessions '{"session": {"email": "admin@admin.com", "password": "admin"}}' 2>/dev/null | json 'd["session"]["token"]' 2>/dev/null) && break
  sleep 2
done
[[ -n $token ]] || { echo "Mage's API did not answer on 127.0.0.1:6789 within 5 min; kubectl port-forward said:" >&2; tail -5 "$state/port-forward-6789.log" >&2; exit 1; }
echo "Mage is up: http://127.0.0.1:6789 (admin@admin.com / admin)"

# The project `mage start default_repo` created on the shared volume: every
# block runs as a Kubernetes Job through the agent.
project=$shared/default_repo
cat >>"$project/metadata.yaml" <<'YAML'
k8s_executor_config:
  job_name_prefix: demo
  resource_requests: {cpu: 100m, memory: 256Mi}
  resource_limits: {memory: 1Gi}
  job:
    backoff_limit: 0
YAML
mkdir -p "$project/pipelines/etl"
cat >"$project/pipelines/etl/metadata.yaml" <<'YAML'
uuid: etl
name: etl
type: python
executor_type: k8s
blocks:
- {uuid: load, name: load, type: data_loader, language: python, executor_type: k8s, upstream_blocks: [], downstream_blocks: [transform]}
- {uuid: transform, name: transform, type: transformer, language: python, executor_type: k8s, upstream_blocks: [load], downstream_blocks: [report]}
- {uuid: report, name: report, type: data_exporter, language: python, executor_type: k8s, upstream_blocks: [transform], downstream_blocks: []}
YAML
cat >"$project/data_loaders/load.py" <<'PY'
if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def load(*args, **kwargs):
    rows = [{'city': c, 'trips': n} for c, n in [('Lisbon', 12), ('Porto', 7), ('Faro', 3)]]
    print(f'loaded {len(rows)} rows')
    return rows
PY
cat >"$project/transformers/transform.py" <<'PY'
if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def transform(rows, *args, **kwargs):
    total = sum(r['trips'] for r in rows)
    print(f'{total} trips in {len(rows)} cities')
    return [dict(r, share=round(r['trips'] / total, 2)) for r in rows]
PY
cat >"$project/data_exporters/report.py" <<'PY'
if 'data_exporter' not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def report(rows, *args, **kwargs):
    for r in rows:
        print(f"{r['city']:<8} {r['trips']:>3} trips  {r['share']:.0%}")
PY

read -r id trigger_token < <(mage_api POST pipelines/etl/pipeline_schedules '{"pipeline_schedule": {"name": "demo", "schedule_type": "api", "status": "active"}}' |
  json '"%s %s" % (d["pipeline_schedule"]["id"], d["pipeline_schedule"]["token"])')
run=$(curl -sf -m 30 -X POST "http://127.0.0.1:6789/api/pipeline_schedules/$id/pipeline_runs/$trigger_token" \
  -H 'Content-Type: application/json' -d '{"pipeline_run": {"variables": {}}}' | json 'd["pipeline_run"]["id"]')
echo "triggered pipeline etl through Mage's API: pipeline run $run"

# mage-ai 0.9.80's process queue can strand a block run: a worker pool
# started for it exits before the job reaches the queue's pipe, and the
# job waits for Mage's next enqueue to start a pool (in a busy Mage, the
# next run's). When Mage has sent no new request for a minute while every
# run the agent had from it has ended, the demo says so and runs a no-op
# pipeline in Mage itself, whose enqueue starts the pool.
nudge_schedule= nudge_trigger= # the no-op pipeline's API trigger, made on the first nudge
nudge() {
  if [[ -z $nudge_schedule ]]; then
    mkdir -p "$project/pipelines/queue_nudge"
    printf '%s\n' 'uuid: queue_nudge' 'name: queue_nudge' 'type: python' 'executor_type: local_python' 'blocks:' \
      '- {uuid: queue_nudge, name: queue_nudge, type: data_loader, language: python, executor_type: local_python, upstream_blocks: [], downstream_blocks: []}' \
      >"$project/pipelines/queue_nudge/metadata.yaml"
    printf '%s\n' "if 'data_loader' not in globals():" '    from mage_ai.data_preparation.decorators import data_loader' '' '' \
      '@data_loader' 'def queue_nudge(*args, **kwargs):' "    print('nudge')" >"$project/data_loaders/queue_nudge.py"
    read -r nudge_schedule nudge_trigger < <(mage_api POST pipelines/queue_nudge/pipeline_schedules '{"pipeline_schedule": {"name": "queue_nudge", "schedule_type": "api", "status": "active"}}' |
      json '"%s %s" % (d["pipeline_schedule"]["id"], d["pipeline_schedule"]["token"])')
  fi
  curl -sf -m 30 -X POST "http://127.0.0.1:6789/api/pipeline_schedules/$nudge_schedule/pipeline_runs/$nudge_trigger" \
    -H 'Content-Type: application/json' -d '{"pipeline_run": {"variables": {}}}' >/dev/null
}
runs_seen() { # ended/all of the agent's runs
  local all=0 ended=0 f
  for f in "$shared"/.magekube/runs/*/status.json; do
    [[ -f $f ]] || continue
    all=$((all + 1))
    grep -qE '"phase": *"(Succeeded|Failed|Cancelled)"' "$f" && ended=$((ended + 1))
  done
  echo "$ended/$all"
}

agent=(bin/agent --dir "$shared/.magekube") # the files only: the agent itself runs in the pod
deadline=$((SECONDS + 600))
seen= since=$SECONDS nudged=-1000 note=
nudge_after=${MAGEKUBE_DEMO_NUDGE_AFTER:-60} # seconds; 0 nudges on every poll without a new request (to try the nudge)
while :; do
  forward mage 6789
  status=$(mage_api GET "pipeline_runs/$run" | json 'd["pipeline_run"]["status"]')
  printf '\033[2J\033[HMage pipeline run %s: %s\n%s\n%s\n' "$run" "$status" "$note" "$("${agent[@]}" status 2>&1)"
  [[ $status == completed || $status == failed || $status == cancelled ]] && break
  if ((SECONDS > deadline)); then echo "the pipeline run did not end in 10 min" >&2; exit 1; fi
  now_seen=$(runs_seen)
  if [[ $now_seen != "$seen" || ${now_seen%/*} != "${now_seen#*/}" ]]; then
    seen=$now_seen since=$SECONDS
  elif ((SECONDS - since >= nudge_after && SECONDS - nudged >= nudge_after)); then
    note="Mage sent no new request for ${nudge_after}s: nudged its process queue with pipeline queue_nudge (see hack/demo.sh)"
    nudge
    nudged=$SECONDS
  fi
  sleep 2
done

echo
# Each block's own output, from its Job's log (the runner tees it to the
# run's directory; Mage logs each print as a JSON line).
for dir in "$shared"/.magekube/runs/*/; do
  [[ -f $dir/status.json ]] || continue
  echo "--- $(basename "$dir"): $(json '"%s %s" % (d["phase"], d.get("reason", ""))' <"$dir/status.json")"
  python3 - "$dir/log" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    start = line.find("{")
    try:
        msg = json.loads(line[start:])["message"] if start >= 0 else None
    except (ValueError, KeyError, TypeError):
        continue
    if msg and not msg.startswith(("Start executing", "Finish executing", "Executing ")):
        print("    " + msg)
PY
done
echo
# The pipeline run is one trace: its blocks share it.
forward jaeger 16686
for trace in $(for f in "$shared"/.magekube/runs/*/status.json; do json 'd.get("trace_id", "")' <"$f"; done | sort -u); do
  spans=0
  for _ in $(seq 1 50); do # the export is asynchronous
    spans=$(curl -sf -m 10 "http://127.0.0.1:16686/api/traces/$trace" | grep -o '"operationName"' | wc -l) || true
    ((spans >= 18)) && break
    sleep 0.2
  done
  echo "trace of pipeline run $run: http://127.0.0.1:16686/trace/$trace ($spans spans)"
done
echo
echo "Mage pipeline run $run: $status"
echo "mage:    http://127.0.0.1:6789/pipelines/etl/runs/$run"
echo "status:  bin/agent --dir $shared/.magekube status [ID]"
echo "jobs:    kubectl -n mage get jobs   (context kind-magekube)"
echo "cleanup: make demo-down"
[[ $status == completed ]]
