// Package manifests holds no code: its test builds every kustomization
// under deploy/manifests with kustomize (the library kubectl embeds) and
// checks the properties the docs promise.
package manifests

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/magekube/magekube/pkg/kube"
)

func build(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return res
}

// TestEveryKustomizationBuilds: `kubectl kustomize` works on each
// directory (components are checked through the example that uses them).
func TestEveryKustomizationBuilds(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(data, &k); err != nil {
			return err
		}
		if k.Kind == "Component" {
			return nil
		}
		n++
		build(t, filepath.Dir(path))
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("walked %d kustomizations: %v", n, err)
	}
}

// TestLeastPrivilege: namespaced RBAC only, no wildcards, exactly the
// verbs the agent uses.
func TestLeastPrivilege(t *testing.T) {
	for _, r := range build(t, "base").Resources() {
		switch r.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("cluster-wide %s %s", r.GetKind(), r.GetName())
		case "Role":
			data, _ := r.AsYAML()
			var role rbacv1.Role
			if err := yaml.Unmarshal(data, &role); err != nil {
				t.Fatal(err)
			}
			for _, rule := range role.Rules {
				for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs} {
					for _, v := range list {
						if v == "*" {
							t.Errorf("wildcard in rule %+v", rule)
						}
					}
				}
			}
		}
	}
}

// podSpec is the pod spec of the workload kind/name that dir builds.
func podSpec(t *testing.T, dir, kind, name string) *corev1.PodSpec {
	t.Helper()
	for _, r := range build(t, dir).Resources() {
		if r.GetKind() != kind || r.GetName() != name {
			continue
		}
		data, _ := r.AsYAML()
		switch kind {
		case "Pod":
			var p corev1.Pod
			if err := yaml.Unmarshal(data, &p); err != nil {
				t.Fatal(err)
			}
			return &p.Spec
		default:
			var w struct {
				Spec struct{ Template corev1.PodTemplateSpec }
			}
			if err := yaml.Unmarshal(data, &w); err != nil {
				t.Fatal(err)
			}
			return &w.Spec.Template.Spec
		}
	}
	t.Fatalf("%s: no %s %s", dir, kind, name)
	return nil
}

// TestSidecar: in every example layout (a Deployment, a StatefulSet and
// a bare Pod as Mage's kube/app.yaml has it), the chosen Mage workload
// holds one Kubernetes token, in the agent container, which runs locked
// down with a liveness probe only; the Mage container gets the trigger.
func TestSidecar(t *testing.T) {
	for _, tc := range []struct{ dir, kind, name string }{
		{"examples/mage-stack", "Deployment", "mage"},
		{"examples/statefulset", "StatefulSet", "mage"},
		{"examples/mage-kube-app", "Pod", "mage-server"},
	} {
		t.Run(tc.dir, func(t *testing.T) { checkSidecar(t, podSpec(t, tc.dir, tc.kind, tc.name)) })
	}
}

func checkSidecar(t *testing.T, spec *corev1.PodSpec) {
	t.Helper()
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken || spec.ServiceAccountName != "magekube-agent" {
		t.Errorf("pod: automount %v, service account %q", spec.AutomountServiceAccountToken, spec.ServiceAccountName)
	}
	agents := 0
	for i, c := range spec.Containers {
		token := false
		for _, m := range c.VolumeMounts {
			token = token || m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount"
		}
		if c.Name != "magekube-agent" {
			if token {
				t.Errorf("container %s mounts the token", c.Name)
			}
			if i == 0 && !hasEnv(c, "PYTHONPATH", "/opt/magekube/python:/home/src") {
				t.Errorf("Mage container %s lacks the trigger's PYTHONPATH", c.Name)
			}
			continue
		}
		agents++
		sc := c.SecurityContext
		if !token || sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("agent container: token %v, securityContext %+v", token, sc)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe != nil || c.StartupProbe != nil {
			t.Error("agent container: want a /healthz liveness probe and no readiness or startup probe (the sidecar must never take Mage out of its Service)")
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil
		}
		if !env["KUBE_POD_NAME"] || !env["KUBE_NAMESPACE"] {
			t.Error("agent container lacks downward-API KUBE_POD_NAME/KUBE_NAMESPACE")
		}
	}
	if agents != 1 {
		t.Errorf("%d agent containers, want 1", agents)
	}
}

func hasEnv(c corev1.Container, name, value string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.Value == value {
			return true
		}
	}
	return false
}

var update = flag.Bool("update", false, "regenerate the Pod variants of the patches")

// TestPodPatches: the Pod variants of the sidecar and trigger patches are
// the Deployment ones on the Pod's own spec.
func TestPodPatches(t *testing.T) {
	for from, to := range map[string]string{
		"sidecar/sidecar-patch.yaml":      "sidecar-pod/sidecar-patch.yaml",
		"mage-trigger/trigger-patch.yaml": "mage-trigger-pod/trigger-patch.yaml",
	} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		want := "# Generated from ../" + from + " (go test ./deploy/manifests -run TestPodPatches -update): the same patch on a Pod.\n" +
			strings.ReplaceAll(string(data), "/spec/template/spec/", "/spec/")
		if *update {
			if err := os.WriteFile(to, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(to)
		if err != nil || string(got) != want {
			t.Errorf("%s is stale (%v): go test ./deploy/manifests -run TestPodPatches -update", to, err)
		}
	}
}

// TestRoleGrantsWhatPreflightChecks: the agent's Role grants exactly the
// permissions `agent run` checks at start, no more.
func TestRoleGrantsWhatPreflightChecks(t *testing.T) {
	data, err := os.ReadFile("base/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				for _, v := range rule.Verbs {
					granted[g+"/"+r+"/"+v] = true
				}
			}
		}
	}
	checked := map[string]bool{}
	for _, a := range kube.Required {
		checked[a.Group+"/"+a.Resource+"/"+a.Verb] = true
	}
	for k := range granted {
		if !checked[k] {
			t.Errorf("role.yaml grants %s, which preflight does not check (unused?)", k)
		}
	}
	for k := range checked {
		if !granted[k] {
			t.Errorf("preflight checks %s, which role.yaml does not grant", k)
		}
	}
}

// TestImagesArePinned: no manifest uses a :latest (or untagged) image,
// and the agent's image is the release in VERSION, which `make images`
// builds.
func TestImagesArePinned(t *testing.T) {
	version, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := "ghcr.io/magekube/agent:" + strings.TrimSpace(string(version))
	image := regexp.MustCompile(`(?m)^\s*(?:-\s*)?image:\s*"?([^"\s#]+)`)
	agents := 0
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range image.FindAllStringSubmatch(string(data), -1) {
			ref := m[1]
			if strings.HasSuffix(ref, ":latest") || !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
				t.Errorf("%s: image %s is not pinned to a version", path, ref)
			}
			if strings.HasPrefix(ref, "ghcr.io/magekube/agent") {
				agents++
				if ref != want {
					t.Errorf("%s: image %s, want %s (VERSION)", path, ref, want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if agents == 0 {
		t.Error("no manifest names the agent image")
	}
}

// TestRollback: with the rollback component last, the Mage pod is as
// Mage's own Kubernetes executor needs it: no agent and no agent token,
// the trigger switched off, KUBE_NAMESPACE set (mage-ai creates its Jobs
// in "default" without it), the pod's own service account mounted, and a
// Role with exactly the calls mage-ai's JobManager makes.
func TestRollback(t *testing.T) {
	spec := podSpec(t, "examples/rollback", "Deployment", "mage")
	if spec.ServiceAccountName != "mage-k8s-executor" || spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("pod: service account %q, automount %v; want mage-k8s-executor, true", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	for _, c := range spec.Containers {
		if c.Name == "magekube-agent" {
			t.Error("the agent container is still in the pod")
		}
	}
	for _, v := range spec.Volumes {
		if v.Name == "magekube-agent-token" {
			t.Error("the agent's token volume is still in the pod")
		}
	}
	mage := spec.Containers[0]
	if !hasEnv(mage, "MAGEKUBE_DISABLE", "1") {
		t.Error("the Mage container lacks MAGEKUBE_DISABLE=1")
	}
	namespace := false
	for _, e := range mage.Env {
		namespace = namespace || (e.Name == "KUBE_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
	}
	if !namespace {
		t.Error("the Mage container lacks KUBE_NAMESPACE from the downward API")
	}

	granted := map[string]bool{}
	bound := false
	for _, r := range build(t, "examples/rollback").Resources() {
		data, _ := r.AsYAML()
		switch r.GetKind() {
		case "Role":
			if r.GetName() != "mage-k8s-executor" {
				continue
			}
			var role rbacv1.Role
			if err := yaml.Unmarshal(data, &role); err != nil {
				t.Fatal(err)
			}
			for _, rule := range role.Rules {
				for _, g := range rule.APIGroups {
					for _, res := range rule.Resources {
						for _, v := range rule.Verbs {
							granted[g+"/"+res+"/"+v] = true
						}
					}
				}
			}
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			if err := yaml.Unmarshal(data, &rb); err != nil {
				t.Fatal(err)
			}
			bound = bound || (rb.RoleRef.Name == "mage-k8s-executor" && len(rb.Subjects) == 1 && rb.Subjects[0].Name == "mage-k8s-executor" && rb.Subjects[0].Namespace == "mage")
		}
	}
	// mage-ai 0.9.80's JobManager: read_namespaced_pod (its own pod), then
	// create_namespaced_job, read_namespaced_job and delete_namespaced_job.
	want := []string{"/pods/get", "batch/jobs/create", "batch/jobs/get", "batch/jobs/delete"}
	for _, k := range want {
		if !granted[k] {
			t.Errorf("the executor's Role lacks %s", k)
		}
	}
	if len(granted) != len(want) {
		t.Errorf("the executor's Role grants %v, want exactly %v", granted, want)
	}
	if !bound {
		t.Error("no RoleBinding of mage-k8s-executor to its service account in namespace mage")
	}
}
