#!/usr/bin/env bash
# helm --post-renderer for Mage's mageai chart: adds what its values
# cannot, with the project's kustomize components (needs kubectl).
#   - standaloneScheduler mode (values-standalone.yaml): the agent sidecar
#     and the trigger on the scheduler Deployment, the pod that runs
#     Mage's executors (../manifests/select/mageai-scheduler);
#   - either mode: the chart's own RoleBindings of the job-manager and
#     workspace-manager Roles are removed, so the agent's service account
#     has its own Role only (the Mage container holds no token to use
#     them).
#   helm install mageai mageai/mageai -n mage -f deploy/helm/values.yaml \
#     --post-renderer deploy/helm/post-render.sh
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# kustomize takes components by relative path only: the work directory is
# made here, and removed on exit.
work=$(mktemp -d "$here/.render.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/chart.yaml"
components=(../drop-chart-rolebindings)
if grep -q 'app.kubernetes.io/name: mageai-scheduler' "$work/chart.yaml"; then
  components=(../../manifests/select/mageai-scheduler ../../manifests/sidecar ../../manifests/mage-trigger "${components[@]}")
fi
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [chart.yaml]"
  echo "components:"
  printf '  - %s\n' "${components[@]}"
} >"$work/kustomization.yaml"
kubectl kustomize "$work"
