#!/usr/bin/env bash
# Runs the e2e suite on kind (hosts with Docker): create the cluster,
# build the images from the Dockerfiles, load them, apply deploy/manifests
# when present, run the suite, delete the cluster (also on failure).
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
KIND_VERSION=v0.33.0
name=magekube
shared=/tmp/magekube-kind-shared
kubeconfig=$(mktemp)

kind=$(command -v kind || true)
if [[ -z $kind ]]; then
  GOBIN=$repo/bin go install "sigs.k8s.io/kind@$KIND_VERSION"
  kind=$repo/bin/kind
fi
cleanup() {
  "$kind" delete cluster --name "$name" >/dev/null 2>&1 || true
  rm -f "$kubeconfig"
  rm -rf "$shared"
}
trap cleanup EXIT

mkdir -p "$shared"
chmod 0777 "$shared"
"$kind" create cluster --name "$name" --config "$here/cluster.yaml" --kubeconfig "$kubeconfig" --wait 120s

docker build -f "$repo/Dockerfile.agent" -t magekube/agent:dev "$repo"
docker build -f "$repo/Dockerfile.runner" -t magekube/runner:dev "$repo"
docker build -f "$here/Dockerfile.test-server" -t magekube/test-server:dev "$repo"
for image in magekube/agent:dev magekube/runner:dev magekube/test-server:dev; do
  "$kind" load docker-image --name "$name" "$image"
done

if [[ -f $repo/deploy/manifests/kustomization.yaml ]]; then
  kubectl --kubeconfig "$kubeconfig" apply -k "$repo/deploy/manifests"
fi

cd "$repo"
MAGEKUBE_E2E_KUBECONFIG=$kubeconfig \
MAGEKUBE_E2E_AGENT_IMAGE=magekube/agent:dev \
MAGEKUBE_E2E_SERVER_IMAGE=magekube/test-server:dev \
MAGEKUBE_E2E_SHARED_DIR=$shared \
  go test -tags "urfave_cli_no_docs,e2e" -count=1 -timeout 30m ./test/e2e/...
