//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestDeployManifests deploys deploy/manifests/examples/mage-stack as a
// user would, with the changes an offline cluster needs (a hostPath for
// the RWX claim, the test images, no Jaeger image), and runs a block
// through the agent sidecar, which works with exactly the RBAC the
// manifests grant and the only Kubernetes token in the pod.
func TestDeployManifests(t *testing.T) {
	ns := env.Namespace(t, "deploy")
	shared := filepath.Join(sharedDir(t), ns)
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	objs := buildManifests(t, "../../deploy/manifests/examples/mage-stack")
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		switch {
		case o.GetKind() == "Namespace", o.GetKind() == "PersistentVolumeClaim", o.GetName() == "jaeger":
			continue // the test's namespace; a hostPath instead; no Jaeger image offline
		case o.GetKind() == "Deployment" && o.GetName() == "mage":
			offlineMage(t, o, shared)
		case o.GetKind() == "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
		o.SetNamespace(ns)
		apply = append(apply, o)
	}
	applyAll(t, apply)

	// The server pod: Ready means the agent passed its preflight with the
	// Role's permissions and synced its informers.
	var pod corev1.Pod
	waitFor(t, 2*time.Minute, "the Mage pod with the agent to be Ready", func() bool {
		pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mage"})
		if err != nil || len(pods.Items) != 1 {
			return false
		}
		pod = pods.Items[0]
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}, func() string { return podDiagnostics(t, ns) })

	// The token split: only the agent container mounts a token.
	for _, c := range pod.Spec.Containers {
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || strings.HasPrefix(m.MountPath, "/var/run/secrets/kubernetes.io")
		}
		if mounted != (c.Name == "magekube-agent") {
			t.Errorf("container %s: token mounted = %v", c.Name, mounted)
		}
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("pod automounts a service account token")
	}

	layout := protocol.Layout{Root: filepath.Join(shared, ".magekube")}
	req := `{"apiVersion":"magekube/v1","id":"deployed-1","kind":"block","project_dir":"/home/src/none","pipeline_uuid":"etl","block_uuid":"load","block_run_id":1,
	  "command":["/usr/local/bin/block","--print","ran through the deployed agent"]}`
	if _, err := protocol.Submit(layout, []byte(req)); err != nil {
		t.Fatal(err)
	}
	s := waitRun(t, layout, "deployed-1", func(s protocol.Status) bool { return s.Phase.Terminal() })
	if s.Phase != protocol.PhaseSucceeded || s.ExitCode == nil || *s.ExitCode != 0 {
		t.Errorf("run through the deployed agent: %+v\n%s", s, podDiagnostics(t, ns))
	}
	log, _ := os.ReadFile(layout.RunFile("deployed-1", protocol.LogFile))
	if !strings.Contains(string(log), "ran through the deployed agent") {
		t.Errorf("run log: %q", log)
	}
	// Its Job carries the agent's Events (events create is in the Role).
	waitFor(t, time.Minute, "a Dispatched event on the Job", func() bool {
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=Dispatched"})
		return err == nil && len(evs.Items) > 0
	}, func() string { return "" })
}

// buildManifests runs kustomize (the library kubectl embeds) on dir.
func buildManifests(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range res.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(data); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// offlineMage points the example's Mage Deployment at the test images
// and the shared host directory.
func offlineMage(t *testing.T, o *unstructured.Unstructured, shared string) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	volumes := spec["volumes"].([]any)
	for _, v := range volumes {
		vol := v.(map[string]any)
		if vol["name"] == "mage-fs" {
			delete(vol, "persistentVolumeClaim")
			vol["hostPath"] = map[string]any{"path": shared}
		}
	}
	for _, c := range spec["containers"].([]any) {
		ctr := c.(map[string]any)
		switch ctr["name"] {
		case "mage":
			ctr["image"] = env.ServerImage
			delete(ctr, "command") // the stand-in server's own entrypoint
		case "magekube-agent":
			ctr["image"] = env.AgentImage
			var kept []any
			for _, e := range ctr["env"].([]any) {
				if !strings.HasPrefix(e.(map[string]any)["name"].(string), "OTEL_") {
					kept = append(kept, e)
				}
			}
			if env.Cluster != nil {
				// The offline cluster runs no kube-proxy, so the kubernetes
				// Service's cluster IP leads nowhere: in-cluster config
				// gets the API server's own address instead.
				u, err := url.Parse(env.Cluster.Server)
				if err != nil {
					t.Fatal(err)
				}
				kept = append(kept,
					map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": u.Hostname()},
					map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": u.Port()})
			}
			ctr["env"] = kept
		}
	}
	if err := unstructured.SetNestedMap(o.Object, spec, "spec", "template", "spec"); err != nil {
		t.Fatal(err)
	}
}

// applyAll server-side applies objects, as `kubectl apply --server-side`.
func applyAll(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		_, err = dyn.Resource(m.Resource).Namespace(o.GetNamespace()).Patch(context.Background(), o.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: "magekube-e2e", Force: ptr(true)})
		if err != nil {
			t.Fatalf("apply %s %s: %v", gvk.Kind, o.GetName(), err)
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, diag())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// podDiagnostics is what a failing deploy test shows: pod states and the
// agent's log.
func podDiagnostics(t *testing.T, ns string) string {
	var b strings.Builder
	pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s\n", p.Name, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  %s ready=%v restarts=%d state=%+v last=%+v\n", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
		}
		if strings.HasPrefix(p.Name, "mage-") {
			previous := false
			for _, cs := range p.Status.ContainerStatuses {
				previous = previous || (cs.Name == "magekube-agent" && cs.RestartCount > 0 && cs.State.Running == nil)
			}
			logs, err := env.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "magekube-agent", Previous: previous}).DoRaw(context.Background())
			fmt.Fprintf(&b, "  agent log (%v):\n%s\n", err, logs)
		}
	}
	return b.String()
}
