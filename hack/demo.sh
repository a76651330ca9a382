#!/usr/bin/env bash
# The main job end to end on the offline cluster (root): start a real node,
# deploy a stand-in Mage server pod, write three run requests, turn each
# into the Job the agent builds (agent render, reading the pod from the
# API), run them, and print every run's outcome from the files the runner
# wrote. `make cluster-down` removes everything afterwards.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
require kubectl "Debian: apt-get install kubectl, or any kubectl ≥1.32"

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
    volumeMounts: [{name: mage-fs, mountPath: /home/src}]
  volumes:
  - name: mage-fs
    hostPath: {path: $shared}
YAML
kubectl -n mage wait --for=condition=Ready pod/mage-server --timeout=120s >/dev/null

request() { # id block run-id [command-json]
  local cmd=""
  [[ -n ${4:-} ]] && cmd=", \"command\": $4"
  cat >"$shared/.magekube/$1.json" <<JSON
{"apiVersion": "magekube/v1", "id": "$1", "kind": "block", "project_dir": "/home/src/default_repo",
 "pipeline_uuid": "etl", "block_uuid": "$2", "pipeline_run_id": 1, "block_run_id": $3, "trigger_name": "daily"$cmd}
JSON
}
request etl-1-load load 11
request etl-1-transform transform 12 '["/usr/local/bin/block", "--print", "transformed", "--sleep", "2s"]'
request etl-1-report report 13 '["/usr/local/bin/block", "--print", "report failed on purpose", "--exit", "3"]'

for id in etl-1-load etl-1-transform etl-1-report; do
  # project_dir is read by the agent at the path the server sees.
  sed "s|/home/src/default_repo|$project|" "$shared/.magekube/$id.json" >"/tmp/magekube-demo-$id.json"
  bin/agent --kubeconfig "$KUBECONFIG" --pod-name mage-server --pod-namespace mage \
    --runner-image magekube/agent:dev render "/tmp/magekube-demo-$id.json" |
    sed "s|$project|/home/src/default_repo|" | kubectl apply -f - | sed 's/^/  /'
done
echo "waiting for the three Jobs…"
deadline=$((SECONDS + 180))
for id in etl-1-load etl-1-transform etl-1-report; do
  until [[ -f $shared/.magekube/runs/$id/result.json ]]; do
    if ((SECONDS > deadline)); then
      kubectl -n mage get jobs,pods -o wide >&2
      echo "no result for $id after 180s" >&2
      exit 1
    fi
    sleep 0.5
  done
done

printf '\n%-18s %-10s %-6s %-9s %s\n' RUN REASON EXIT SECONDS POD
for id in etl-1-load etl-1-transform etl-1-report; do
  python3 - "$shared/.magekube/runs/$id/result.json" "$id" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<18} {r['reason']:<10} {r['exit_code']:<6} {r['duration_seconds']:<9.2f} {r.get('pod', '')}")
PY
done
echo
echo "logs:    $shared/.magekube/runs/<id>/log   (also: kubectl -n mage logs job/<name>)"
echo "jobs:    KUBECONFIG=$KUBECONFIG kubectl -n mage get jobs"
echo "cleanup: make cluster-down"
