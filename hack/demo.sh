#!/usr/bin/env bash
# The main job end to end on the offline cluster (root): start a real node
# and Jaeger, deploy deploy/manifests/examples/mage-stack (a stand-in Mage
# server with the agent sidecar and the Mage-side trigger) with the
# changes an offline cluster needs, submit a small pipeline's blocks as
# run requests, show live progress, print every outcome and its trace.
# Jaeger's UI stays on 127.0.0.1:16686; `make demo-down` removes it all.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

bins=$(hack/build-bins.sh)
export PATH=$bins:$PATH # the pinned kubectl
hack/install-node-deps.sh
hack/build.sh >/dev/null
testcluster() { go run -tags "$GO_TAGS" ./test/cluster/cmd/testcluster "$@"; }
testcluster down --name demo # a demo still up from an earlier run; test clusters are left alone
testcluster up --bin-dir "$bins" --nodes 1 --name demo --jaeger-ui 127.0.0.1:16686 | tee /tmp/magekube-demo-up.log
otlp=$(sed -n 's/^jaeger: .*OTLP\/HTTP \(.*\)$/\1/p' /tmp/magekube-demo-up.log)
export KUBECONFIG=/tmp/magekube-clusters/demo/admin.kubeconfig
shared=/tmp/magekube-clusters/demo/shared # the project volume, /home/src in the pod
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
testcluster deploy-example --namespace mage --shared "$shared" --otlp "$otlp"
kubectl -n mage rollout status deployment/mage --timeout=180s
agent=(bin/agent --dir "$shared/.magekube") # the files only: the agent itself runs in the pod
echo "agent sidecar ready in $(kubectl -n mage get pods -l app.kubernetes.io/name=mage -o name)"

request() { # id block run-id [command-json]
  local cmd=""
  [[ -n ${4:-} ]] && cmd=", \"command\": $4"
  echo "{\"apiVersion\": \"magekube/v1\", \"id\": \"$1\", \"kind\": \"block\", \"project_dir\": \"/home/src/default_repo\",
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
for id in etl-1-load etl-1-transform etl-1-report etl-1-clean; do
  trace=$(sed -n 's/.*"trace_id": *"\([0-9a-f]*\)".*/\1/p' "$shared/.magekube/runs/$id/status.json")
  spans=0
  for _ in $(seq 1 50); do # the export is asynchronous
    spans=$(curl -sf "http://127.0.0.1:16686/api/traces/$trace" | grep -o '"operationName"' | wc -l) || true
    ((spans >= 6)) && break
    sleep 0.2
  done
  echo "trace   $id: http://127.0.0.1:16686/trace/$trace ($spans spans)"
done
echo
echo "status:  bin/agent --dir $shared/.magekube status [ID]"
echo "jobs:    KUBECONFIG=$KUBECONFIG kubectl -n mage get jobs; kubectl -n mage describe job NAME"
echo "metrics: KUBECONFIG=$KUBECONFIG kubectl -n mage port-forward deployment/mage 8080 (then /metrics)"
echo "cleanup: make demo-down"
