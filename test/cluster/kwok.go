package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FakeNodeLabel selects the nodes kwok plays; their pods never run a
// container. Fake nodes carry the NoSchedule taint FakeNodeLabel=true, so
// only pods with FakeNodeToleration land there and a cluster with both
// kinds keeps real pods on real nodes (or Pending). A pod on a fake node goes Running at once and stays Running
// until it is annotated with ExitCodeAnnotation, then ends with that exit
// code (0: Succeeded, anything else: Failed), so a test decides when and
// how each "container" ends.
const (
	FakeNodeLabel      = "magekube.dev/fake-node"
	ExitCodeAnnotation = "kwok.magekube.dev/exit-code"
)

// FakeNodeToleration lets a pod run on the fake nodes.
func FakeNodeToleration() corev1.Toleration {
	return corev1.Toleration{Key: FakeNodeLabel, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}
}

// kwokStages drives fake nodes and their pods. Written for this harness:
// a node becomes Ready with ample capacity; a pod becomes Running (init
// containers Completed); an annotated pod terminates; a deleted pod goes.
const kwokStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Ready, status: "True", reason: KubeletReady, message: "kwok fake node", lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }}}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ NodeName | Quote }}}
      allocatable: {cpu: 1k, memory: 1Ti, pods: 1M}
      capacity: {cpu: 1k, memory: 1Ti, pods: 1M}
      nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-running}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Pending]}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0, state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-exit}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.phase, operator: In, values: [Running]}
    - {key: '.metadata.annotations["` + ExitCodeAnnotation + `"]', operator: Exists}
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := index .metadata.annotations "` + ExitCodeAnnotation + `" }}
      conditions:
      - {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: false, restartCount: 0, state: {terminated: {exitCode: {{ $code }}, reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}}
      {{ end }}
      phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    delete: true
`

// startKwok runs kwok for the fake nodes and registers them.
func (c *Cluster) startKwok(ctx context.Context, o Options) error {
	stages := c.dir("kwok-stages.yaml")
	if err := os.WriteFile(stages, []byte(kwokStages), 0o644); err != nil {
		return err
	}
	port, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	kwok, err := startProc(c.dir("logs"), "kwok", "", []string{
		filepath.Join(o.BinDir, "kwok"),
		"--kubeconfig=" + c.Kubeconfig,
		"--config=" + stages,
		"--manage-nodes-with-label-selector=" + FakeNodeLabel + "=true",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
		"--v=WARN",
		fmt.Sprintf("--server-address=127.0.0.1:%d", port),
	}, []string{"HOME=" + c.dir()})
	if err != nil {
		return err
	}
	if err := c.track(kwok); err != nil {
		return err
	}
	client, err := c.Client()
	if err != nil {
		return err
	}
	for i := 1; i <= o.FakeNodes; i++ {
		name := fmt.Sprintf("fake-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Labels:      map[string]string{FakeNodeLabel: "true", corev1.LabelHostname: name, corev1.LabelOSStable: "linux"},
				Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"},
			},
			Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: FakeNodeLabel, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1M")}},
		}
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register %s: %w", name, err)
		}
	}
	return nil
}
