#!/usr/bin/env bash
# The main job end to end on the offline cluster (root): start a real node,
# deploy a stand-in Mage server pod, write three run requests, turn each
# into the Job the agent builds (agent render, reading the pod from the
# API), run them, and print every run's outcome from the files the runner
# wrote. `make cluster-down` removes everything afterwards.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
require kubectl "any kubectl ≥1.32 on PATH"
require curl "apt-get install curl"

bins=$(hack/build-bins.sh)
hack/install-node-deps.sh
hack/build.sh >/dev/null
go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster down >/dev/null
go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster up --bin-dir "$bins" --nodes 1 --name demo | tee /tmp/magekube-demo-up.log
export KUBECONFIG=/tmp/magekube-clusters/demo/admin.kubeconfig
shared=/tmp/magekube-clusters/demo/shared
project=$shared/default_repo
mkdir -p "$project/pipelines/etl" "$shared/.magekube"
chmod -R 0777 "$shared"

cat >"$project/metadata.yaml" <<'YAML'
project_uuid: demo
executor_type: k8s
k8s_executor_config:
  job_name_prefix: "demo-{trigger_name}"
  resource_requests: {cpu: 50m, memory: 32Mi}
  resource_limits: {memory: 128Mi}
  job:
    backoff_limit: 0
YAML
cat >"$project/pipelines/etl/metadata.yaml" <<'YAML'
uuid: etl
blocks:
- uuid: load
  executor_config:
    container:
      env: [{name: BLOCK_BEHAVIOUR, value: "--print loaded-42-rows --sleep 1s"}]
- uuid: transform
- uuid: report
YAML

kubectl create namespace mage >/dev/null
# The Mage container mounts the shared volume at the same path the host
# sees it, so the agent (running here, outside the cluster) and the Jobs
# agree on project_dir and the run directories.
kubectl -n mage apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: mage-server}
spec:
  containers:
  - name: mage
    image: magekube/test-server:dev
    imagePullPolicy: Never
    env: [{name: MAGE_CLUSTER_UUID, value: demo}]
    volumeMounts: [{name: mage-fs, mountPath: $shared}]
  volumes:
  - name: mage-fs
    hostPath: {path: $shared}
YAML
kubectl -n mage wait --for=condition=Ready pod/mage-server --timeout=120s >/dev/null

agent=(bin/agent --kubeconfig "$KUBECONFIG" --pod-name mage-server --pod-namespace mage
  --dir "$shared/.magekube" --runner-image magekube/agent:dev)
"${agent[@]}" run --listen 127.0.0.1:18080 --log-format text 2>/tmp/magekube-demo-agent.log &
agent_pid=$!
trap 'kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null' EXIT
until curl -sf http://127.0.0.1:18080/readyz >/dev/null 2>&1; do
  kill -0 "$agent_pid" 2>/dev/null || { cat /tmp/magekube-demo-agent.log >&2; exit 1; }
  sleep 0.2
done
echo "agent ready (pid $agent_pid, log /tmp/magekube-demo-agent.log)"

request() { # id block run-id [command-json]
  local cmd=""
  [[ -n ${4:-} ]] && cmd=", \"command\": $4"
  echo "{\"apiVersion\": \"magekube/v1\", \"id\": \"$1\", \"kind\": \"block\", \"project_dir\": \"$project\",
   \"pipeline_uuid\": \"etl\", \"block_uuid\": \"$2\", \"pipeline_run_id\": 1, \"block_run_id\": $3, \"trigger_name\": \"daily\"$cmd}"
}
submit() { request "$@" | "${agent[@]}" submit - | sed 's/^/  /'; }
# load runs Mage's own command and is followed to its end; then three
# blocks run in parallel, one failing on purpose.
request etl-1-load load 11 | "${agent[@]}" submit --wait -
submit etl-1-transform transform 12 '["/usr/local/bin/block", "--print", "transformed", "--sleep", "2s"]'
submit etl-1-report report 13 '["/usr/local/bin/block", "--print", "report failed on purpose", "--exit", "3"]'
submit etl-1-clean clean 14 '["/usr/local/bin/block", "--print", "cleaned", "--sleep", "1s"]'

deadline=$((SECONDS + 180))
while :; do
  table=$("${agent[@]}" status)
  printf '\033[2J\033[H%s\n' "$table"
  grep -qE 'Queued|Dispatched|Pending|Running' <<<"$table" || break
  if ((SECONDS > deadline)); then echo "runs did not finish in 180s" >&2; exit 1; fi
  sleep 1
done

echo
for id in etl-1-load etl-1-transform etl-1-report etl-1-clean; do
  echo "--- $id: $(tail -n 2 "$shared/.magekube/runs/$id/log" | tr '\n' ' ')"
done
echo
echo "status:  bin/agent --dir $shared/.magekube status [ID]"
echo "jobs:    KUBECONFIG=$KUBECONFIG kubectl -n mage get jobs"
echo "cleanup: make cluster-down"
