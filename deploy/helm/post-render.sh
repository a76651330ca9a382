#!/usr/bin/env bash
# helm --post-renderer for Mage's mageai chart: adds what its values
# cannot, with the project's kustomize components (needs kubectl).
#   - standaloneScheduler mode (values-standalone.yaml): the agent sidecar
#     and the trigger on the scheduler Deployment, the pod that runs
#     Mage's executors. Its name is the chart's scheduler.name
#     (mageai-scheduler unless you set it): pass yours as
#     --scheduler-name NAME (helm: --post-renderer-args) or
#     MAGEKUBE_SCHEDULER_NAME;
#   - either mode: the chart's own RoleBindings of the job-manager and
#     workspace-manager Roles are removed, so the agent's service account
#     has its own Role only (the Mage container holds no token to use
#     them).
# It never emits what deploy/helm/prereqs owns (the ConfigMap
# magekube-mage), and it fails, saying why, when the release would end
# with no agent or with more than one.
#   helm install mageai mageai/mageai -n mage -f deploy/helm/values.yaml \
#     --post-renderer deploy/helm/post-render.sh
set -o errexit -o nounset -o pipefail
scheduler=${MAGEKUBE_SCHEDULER_NAME:-mageai-scheduler}
while (($#)); do
  case $1 in
    --scheduler-name) scheduler=${2:?--scheduler-name needs a name}; shift 2 ;;
    --scheduler-name=*) scheduler=${1#*=}; shift ;;
    *) echo "post-render.sh: unknown argument $1 (want --scheduler-name NAME)" >&2; exit 2 ;;
  esac
done
fail() { echo "magekube post-render.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# kustomize takes components by relative path only: the work directory is
# made here, and removed on exit.
work=$(mktemp -d "$here/.render.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/chart.yaml"
# The chart's Deployments, by name (kind, then the name in metadata).
deployments=$(awk '/^kind: /{k=$2} /^metadata:/{m=1; next} m && /^  name: /{if (k=="Deployment") print $2; m=0} /^[^ ]/ && !/^metadata:/{m=0}' "$work/chart.yaml")
components=(../drop-chart-rolebindings)
if grep -qx -- "$scheduler" <<<"$deployments"; then
  if grep -q '/opt/magekube/python' "$work/chart.yaml"; then
    fail "the chart's values already add the trigger (deploy/helm/values.yaml, for the single-Deployment mode): with standaloneScheduler: true use deploy/helm/values-standalone.yaml, or the scheduler's pod would have the trigger's volumes and environment twice"
  fi
  # Local components: the scheduler chosen by name, and the trigger's
  # ConfigMap left to deploy/helm/prereqs, which owns it (Helm refuses to
  # install over an object another owner made).
  mkdir "$work/select" "$work/prereqs-own"
  cat >"$work/select/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: {group: apps, kind: Deployment, name: $scheduler}
    patch: |-
      - op: add
        path: /metadata/labels/magekube.dev~1mage-server
        value: "true"
YAML
  cat >"$work/prereqs-own/kustomization.yaml" <<'YAML'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - patch: |-
      $patch: delete
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: magekube-mage}
YAML
  components=(select ../../manifests/sidecar ../../manifests/mage-trigger prereqs-own "${components[@]}")
elif grep -q 'value: scheduler$' "$work/chart.yaml"; then
  fail "the chart renders a standalone scheduler, but no Deployment named '$scheduler' (the release's Deployments: $(echo $deployments)): pass its name, the chart's scheduler.name, as --scheduler-name NAME (helm: --post-renderer-args) or MAGEKUBE_SCHEDULER_NAME"
fi
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [chart.yaml]"
  echo "components:"
  printf '  - %s\n' "${components[@]}"
} >"$work/kustomization.yaml"
kubectl kustomize "$work" >"$work/out.yaml"
# Agent containers: a container's name line (kustomize sorts its keys).
agents=$(grep -cE '^ +name: magekube-agent$' "$work/out.yaml" || true)
if ((agents == 0)); then
  fail "no magekube agent in the release: single-Deployment mode takes deploy/helm/values.yaml (-f), standaloneScheduler mode deploy/helm/values-standalone.yaml with this post-renderer"
elif ((agents > 1)); then
  fail "$agents magekube agent containers in the release, want 1: with standaloneScheduler: true use deploy/helm/values-standalone.yaml, not values.yaml (which adds the agent itself)"
fi
cat "$work/out.yaml"
