#!/usr/bin/env bash
# Post-renderer for Mage's mageai chart: adds what its values cannot, with
# the project's kustomize components (needs kubectl). Helm 3:
# --post-renderer deploy/helm/post-render.sh; Helm 4: the plugin in
# deploy/helm/plugin (helm plugin install deploy/helm/plugin, then
# --post-renderer magekube).
#   - The agent sidecar and the trigger, on the pod that runs Mage's
#     executors, when the values did not add them: the scheduler
#     Deployment in standaloneScheduler mode (the chart renders no
#     extraContainers there), else the single Deployment. Their names are
#     the chart's scheduler.name (mageai-scheduler) and fullname (mageai):
#     pass other ones as --scheduler-name NAME / --deployment-name NAME
#     (helm: --post-renderer-args) or MAGEKUBE_SCHEDULER_NAME /
#     MAGEKUBE_DEPLOYMENT_NAME. Added as patches, so your own env,
#     volumes and containers (the chart's extraEnvs, extraVolumes,
#     extraContainers, env, volumes) stay as your values set them.
#   - --agent-image REF (or MAGEKUBE_AGENT_IMAGE) runs the agent from
#     your registry's copy of the release image (REF: name:tag or
#     name@sha256:digest).
#   - Either way, the chart's own RoleBindings of its job-manager and
#     workspace-manager Roles are removed, so the agent's service account
#     has its own Role only (the Mage container holds no token to use
#     them).
# It never emits what deploy/helm/prereqs owns (the ConfigMap
# magekube-mage), and it fails, saying why, when the release would end
# with no agent, with more than one, or with the trigger twice.
set -o errexit -o nounset -o pipefail
scheduler=${MAGEKUBE_SCHEDULER_NAME:-mageai-scheduler}
deployment=${MAGEKUBE_DEPLOYMENT_NAME:-mageai}
agent_image=${MAGEKUBE_AGENT_IMAGE:-}
while (($#)); do
  case $1 in
    --scheduler-name) scheduler=${2:?--scheduler-name needs a name}; shift 2 ;;
    --scheduler-name=*) scheduler=${1#*=}; shift ;;
    --deployment-name) deployment=${2:?--deployment-name needs a name}; shift 2 ;;
    --deployment-name=*) deployment=${1#*=}; shift ;;
    --agent-image) agent_image=${2:?--agent-image needs an image}; shift 2 ;;
    --agent-image=*) agent_image=${1#*=}; shift ;;
    *) echo "post-render.sh: unknown argument $1 (want --scheduler-name NAME, --deployment-name NAME or --agent-image REF)" >&2; exit 2 ;;
  esac
done
fail() { echo "magekube post-render.sh: $*" >&2; exit 1; }
# The script's own directory, links resolved (Helm 4 may run it through
# a link in its plugin directory).
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# kustomize takes components by relative path only: the work directory is
# made here, and removed on exit.
work=$(mktemp -d "$here/.render.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/chart.yaml"
# The chart's Deployments, by name (kind, then the name in metadata).
deployments=$(awk '/^kind: /{k=$2} /^metadata:/{m=1; next} m && /^  name: /{if (k=="Deployment") print $2; m=0} /^[^ ]/ && !/^metadata:/{m=0}' "$work/chart.yaml")
has() { grep -qx -- "$1" <<<"$deployments"; }
components=(../drop-chart-rolebindings)
if has "$scheduler"; then
  target=$scheduler
elif grep -q 'value: scheduler$' "$work/chart.yaml"; then
  fail "the chart renders a standalone scheduler, but no Deployment named '$scheduler' (the release's Deployments: $(echo $deployments)): pass its name, the chart's scheduler.name, as --scheduler-name NAME (helm: --post-renderer-args) or MAGEKUBE_SCHEDULER_NAME"
elif has "$deployment"; then
  target=$deployment
else
  fail "no Deployment named '$deployment' in the release (its Deployments: $(echo $deployments)): pass the name of Mage's Deployment, the chart's fullname, as --deployment-name NAME (helm: --post-renderer-args) or MAGEKUBE_DEPLOYMENT_NAME"
fi
# An agent container in the values' Deployment: a container's name at a
# pod template's depth (a RoleBinding's subject sits shallower).
if grep -qE '^ {8,}(- )?name: magekube-agent$' "$work/chart.yaml"; then
  # deploy/helm/values.yaml's route: the chart's volumes and env values
  # replace its extraVolumes/extraVolumeMounts and extraEnvs, the lists
  # that carry the agent's token and the trigger.
  if (($(grep -c 'name: magekube-agent-token$' "$work/chart.yaml") < 2)); then
    fail "the values set volumes:, which replaces the chart's extraVolumes and extraVolumeMounts, so the agent's token volume and the trigger's are gone: keep your volumes in extraVolumes, or use deploy/helm/values-patched.yaml (the agent and the trigger then come from this post-renderer, as patches)"
  fi
  if ! grep -q 'value: /opt/magekube/python' "$work/chart.yaml"; then
    fail "the values set env:, which replaces the chart's extraEnvs, so the trigger is off Mage's PYTHONPATH: keep your variables in extraEnvs, or use deploy/helm/values-patched.yaml (the agent and the trigger then come from this post-renderer, as patches)"
  fi
else
  if grep -q '/opt/magekube/python' "$work/chart.yaml"; then
    fail "the chart's values add the trigger but not the agent (deploy/helm/values.yaml, whose agent the chart renders in single-Deployment mode only): with standaloneScheduler: true use deploy/helm/values-standalone.yaml, or the scheduler's pod would have the trigger's volumes and environment twice"
  fi
  # Local components: Mage's Deployment chosen by name, and the trigger's
  # ConfigMap left to deploy/helm/prereqs, which owns it (Helm refuses to
  # install over an object another owner made).
  mkdir "$work/select" "$work/prereqs-own"
  cat >"$work/select/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: {group: apps, kind: Deployment, name: $target}
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
fi
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [chart.yaml]"
  echo "components:"
  printf '  - %s\n' "${components[@]}"
  if [[ -n $agent_image ]]; then
    # The release image's name, in every manifest and values file here.
    echo "images:"
    if [[ $agent_image == *@* ]]; then
      echo "  - {name: ghcr.io/magekube/agent, newName: '${agent_image%@*}', digest: '${agent_image#*@}'}"
    elif [[ ${agent_image##*/} == *:* ]]; then
      echo "  - {name: ghcr.io/magekube/agent, newName: '${agent_image%:*}', newTag: '${agent_image##*:}'}"
    else
      fail "--agent-image $agent_image: want name:tag or name@sha256:digest"
    fi
  fi
} >"$work/kustomization.yaml"
kubectl kustomize "$work" >"$work/out.yaml"
# Agent containers: a container's name line (kustomize sorts its keys).
agents=$(grep -cE '^ +name: magekube-agent$' "$work/out.yaml" || true)
if ((agents == 0)); then
  fail "no magekube agent in the release"
elif ((agents > 1)); then
  fail "$agents magekube agent containers in the release, want 1 (one in the values, and one more in extraContainers or another Deployment?)"
fi
cat "$work/out.yaml"
