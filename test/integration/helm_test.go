//go:build integration

package integration

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/test/framework"
)

// TestHelmPostRenderer renders the stand-in of Mage's mageai chart with
// the project's values through deploy/helm/post-render.sh (the pinned
// kubectl's kustomize), in both of the chart's modes, and has the real API
// server validate the result (server-side dry run): the agent lands in
// the pod that runs Mage's executors, once, and the chart's RoleBindings
// are gone.
func TestHelmPostRenderer(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "helm")
	kubectl := func(stdin string, args ...string) string { t.Helper(); return env.Kubectl(t, ns, stdin, args...) }
	kubectl("", "apply", "-k", filepath.Join(repo, "deploy/helm/prereqs"))
	for _, tc := range []struct {
		name, values    string
		scheduler       string   // the chart's scheduler.name, and the post-renderer's
		withAgent, none []string // Deployments with the agent, and without
	}{
		{"values.yaml", "values.yaml", "", []string{"mageai"}, nil},
		{"values-standalone.yaml", "values-standalone.yaml", "", []string{"mageai-scheduler"}, []string{"mageai-webserver"}},
		{"renamed-scheduler", "values-standalone.yaml", "etl-scheduler", []string{"etl-scheduler"}, []string{"mageai-webserver"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := framework.HelmValues(filepath.Join(repo, "deploy/helm", tc.values))
			if err != nil {
				t.Fatal(err)
			}
			if tc.scheduler != "" {
				vals["scheduler"] = map[string]any{"name": tc.scheduler}
				t.Setenv("MAGEKUBE_SCHEDULER_NAME", tc.scheduler)
			}
			manifests, err := framework.RenderChart(filepath.Join(repo, framework.MageChart), "mageai", ns, vals,
				filepath.Join(repo, "deploy/helm/post-render.sh"), env.BinDir)
			if err != nil {
				t.Fatal(err)
			}
			deployments := map[string]*appsv1.Deployment{}
			for _, doc := range strings.Split(manifests, "\n---\n") {
				var meta struct {
					Kind     string
					Metadata struct{ Name string }
				}
				if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
					t.Fatal(err)
				}
				if meta.Kind == "RoleBinding" {
					t.Errorf("RoleBinding %s left in: the chart's Roles would reach the agent's token", meta.Metadata.Name)
				}
				if meta.Kind == "ConfigMap" && meta.Metadata.Name == "magekube-mage" {
					t.Error("the release has the ConfigMap magekube-mage, which deploy/helm/prereqs owns: helm install would stop on its ownership")
				}
				if meta.Kind == "Deployment" {
					d := &appsv1.Deployment{}
					if err := yaml.Unmarshal([]byte(doc), d); err != nil {
						t.Fatal(err)
					}
					deployments[d.Name] = d
				}
			}
			agents := func(name string) int {
				d := deployments[name]
				if d == nil {
					t.Fatalf("no Deployment %s", name)
				}
				n := 0
				for _, c := range d.Spec.Template.Spec.Containers {
					if c.Name == "magekube-agent" {
						n++
					}
				}
				return n
			}
			for _, name := range tc.withAgent {
				if n := agents(name); n != 1 {
					t.Errorf("%s has %d agent containers, want 1", name, n)
				}
				mage := deployments[name].Spec.Template.Spec.Containers[0]
				if !strings.Contains(yamlOf(t, mage.Env), "/opt/magekube/python") {
					t.Errorf("%s: the Mage container lacks the trigger", name)
				}
			}
			for _, name := range tc.none {
				if n := agents(name); n != 0 {
					t.Errorf("%s has %d agent containers, want none", name, n)
				}
			}
			kubectl(manifests, "apply", "--dry-run=server", "-f", "-")
		})
	}

	// What fails, fails loudly, naming the fix.
	for _, tc := range []struct {
		name, values, scheduler, want string
	}{
		{"renamed-scheduler-not-named", "values-standalone.yaml", "etl-scheduler", "--scheduler-name"},
		{"single-mode-values-with-standalone", "values.yaml", "", "with standaloneScheduler: true use deploy/helm/values-standalone.yaml"}, // the trigger twice
		{"chart-defaults-without-magekube-values", "", "", "no magekube agent in the release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := map[string]any{}
			if tc.values != "" {
				if vals, err = framework.HelmValues(filepath.Join(repo, "deploy/helm", tc.values)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name != "chart-defaults-without-magekube-values" {
				vals["standaloneScheduler"] = true
			}
			if tc.scheduler != "" {
				vals["scheduler"] = map[string]any{"name": tc.scheduler}
			}
			_, err := framework.RenderChart(filepath.Join(repo, framework.MageChart), "mageai", ns, vals,
				filepath.Join(repo, "deploy/helm/post-render.sh"), env.BinDir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func yamlOf(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
