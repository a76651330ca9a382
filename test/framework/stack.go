package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExampleStack is the example overlay the e2e suite and `make demo` deploy.
const ExampleStack = "deploy/manifests/examples/mage-stack"

// KindStack writes a kustomize overlay of the example stack into dir, as
// a user deploying it to kind does: namespace ns, the images built here
// under their own names, and a hostPath PersistentVolume on shared (a
// directory every node mounts) for the stack's ReadWriteMany claim,
// since kind has no RWX provisioner. The stack's Namespace object is
// dropped: ns is the caller's. Apply it with `kubectl apply -k dir`.
func KindStack(dir, repo, ns, shared string, e *Env) error {
	stack, err := filepath.Rel(dir, filepath.Join(repo, ExampleStack))
	if err != nil {
		return err
	}
	split := func(ref string) (string, string) {
		i := strings.LastIndex(ref, ":")
		return ref[:i], ref[i+1:]
	}
	mageName, mageTag := split(e.MageImage)
	agentName, agentTag := split(e.AgentImage)
	jaegerName, jaegerTag := split(e.JaegerImage)
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %[1]s
resources:
- %[2]s
- pv.yaml
images:
- {name: mageai/mageai, newName: %[3]s, newTag: %[4]s}
- {name: ghcr.io/magekube/agent, newName: %[5]s, newTag: %[6]s}
- {name: jaegertracing/jaeger, newName: %[7]s, newTag: %[8]s}
patches:
- patch: |-
    $patch: delete
    apiVersion: v1
    kind: Namespace
    metadata:
      name: mage
`, ns, stack, mageName, mageTag, agentName, agentTag, jaegerName, jaegerTag)
	pv := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata:
  name: %[1]s-mage-fs
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteMany]
  storageClassName: standard
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: %[2]s, type: Directory}
  claimRef: {namespace: %[1]s, name: mage-fs}
`, ns, shared)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pv.yaml"), []byte(pv), 0o644)
}
