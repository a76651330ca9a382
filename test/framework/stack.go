package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ExampleStack is the example overlay the e2e suite and `make demo` deploy.
const ExampleStack = "deploy/manifests/examples/mage-stack"

// StackOptions are the changes an offline cluster needs to run the
// example stack as a user would: no storage provisioner (a hostPath
// stands in for the RWX claim), no registry (the test images), no
// kube-proxy (the API server's own address for in-cluster config), no
// Jaeger image (an OTLP endpoint on the host, or none).
type StackOptions struct {
	Namespace               string
	SharedDir               string // host directory mounted as the project volume
	ServerImage, AgentImage string
	// APIServer, when set, is the API server URL the agent uses instead of
	// the kubernetes Service.
	APIServer string
	// OTLPEndpoint, when set, replaces the in-cluster Jaeger's endpoint.
	OTLPEndpoint string
}

// BuildStack runs kustomize (the library kubectl embeds) on dir.
func BuildStack(dir string) ([]*unstructured.Unstructured, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// OfflineStack applies o to the built objects and drops what the offline
// cluster cannot run (the Namespace object: the caller's; the claim; the
// Jaeger Deployment and Service).
func OfflineStack(objs []*unstructured.Unstructured, o StackOptions) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, obj := range objs {
		switch {
		case obj.GetKind() == "Namespace", obj.GetKind() == "PersistentVolumeClaim", obj.GetName() == "jaeger":
			continue
		case obj.GetKind() == "Deployment" && obj.GetName() == "mage":
			if err := offlineMage(obj, o); err != nil {
				return nil, err
			}
		case obj.GetKind() == "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = o.Namespace
			}
			if err := unstructured.SetNestedSlice(obj.Object, subjects, "subjects"); err != nil {
				return nil, err
			}
		}
		obj.SetNamespace(o.Namespace)
		out = append(out, obj)
	}
	return out, nil
}

func offlineMage(obj *unstructured.Unstructured, o StackOptions) error {
	spec, _, err := unstructured.NestedMap(obj.Object, "spec", "template", "spec")
	if err != nil {
		return err
	}
	for _, v := range spec["volumes"].([]any) {
		vol := v.(map[string]any)
		if vol["name"] == "mage-fs" {
			delete(vol, "persistentVolumeClaim")
			vol["hostPath"] = map[string]any{"path": o.SharedDir}
		}
	}
	for _, c := range spec["containers"].([]any) {
		ctr := c.(map[string]any)
		switch ctr["name"] {
		case "mage":
			ctr["image"] = o.ServerImage
			delete(ctr, "command") // the stand-in server's own entrypoint
		case "magekube-agent":
			ctr["image"] = o.AgentImage
			var env []any
			for _, e := range ctr["env"].([]any) {
				name := e.(map[string]any)["name"].(string)
				if name == "OTEL_EXPORTER_OTLP_ENDPOINT" && o.OTLPEndpoint == "" {
					continue
				}
				if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
					e.(map[string]any)["value"] = o.OTLPEndpoint
				}
				env = append(env, e)
			}
			if o.APIServer != "" {
				u, err := url.Parse(o.APIServer)
				if err != nil {
					return err
				}
				env = append(env,
					map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": u.Hostname()},
					map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": u.Port()})
			}
			ctr["env"] = env
		}
	}
	return unstructured.SetNestedMap(obj.Object, spec, "spec", "template", "spec")
}

// Apply server-side applies objects, as `kubectl apply --server-side`.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	force := true
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			return err
		}
		_, err = dyn.Resource(m.Resource).Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "magekube", Force: &force})
		if err != nil {
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(gvk.Kind), o.GetName(), err)
		}
	}
	return nil
}

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
