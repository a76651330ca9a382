//go:build integration

package integration

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/test/framework"
)

// route renders the stand-in of Mage's mageai chart (its hooks; the chart
// cannot be fetched here) the way one install route does, with the
// route's own magekube values under vals (the user's), in the chart's
// single-Deployment mode or standaloneScheduler mode.
type route struct {
	name string
	// helmCLI: the route runs helm's post-renderer (it owns nothing of
	// deploy/helm/prereqs, which is applied first).
	helmCLI bool
	render  func(t *testing.T, vals map[string]any, standalone bool, scheduler string) (string, error)
}

func routes(t *testing.T, repo, ns string) []route {
	chart := filepath.Join(repo, framework.MageChart)
	postRender := filepath.Join(repo, "deploy/helm/post-render.sh")
	values := func(t *testing.T, file string, vals map[string]any) map[string]any {
		t.Helper()
		out, err := framework.HelmValues(filepath.Join(repo, "deploy/helm", file))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range vals {
			out[k] = v
		}
		return out
	}
	helm4, err := framework.NewHelm4(t.Context(), env.BinDir, repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mode := func(vals map[string]any, standalone bool, scheduler string) []string {
		if standalone {
			vals["standaloneScheduler"] = true
		}
		if scheduler != "" {
			vals["scheduler"] = map[string]any{"name": scheduler}
			return []string{"--scheduler-name=" + scheduler}
		}
		return nil
	}
	return []route{
		// Helm 3: --post-renderer deploy/helm/post-render.sh, as Helm 3's
		// library runs it; values.yaml in single mode (the agent from the
		// chart's extraContainers), values-standalone.yaml in the other.
		{"helm3", true, func(t *testing.T, vals map[string]any, standalone bool, scheduler string) (string, error) {
			file := "values.yaml"
			if standalone {
				file = "values-standalone.yaml"
			}
			v := values(t, file, vals)
			if args := mode(v, standalone, scheduler); args != nil {
				t.Setenv("MAGEKUBE_SCHEDULER_NAME", scheduler)
			}
			return framework.RenderChart(chart, "mageai", ns, v, postRender, env.BinDir)
		}},
		// Helm 4: the plugin, with values-patched.yaml (the agent and the
		// trigger as patches, the user's lists untouched).
		{"helm4-plugin", true, func(t *testing.T, vals map[string]any, standalone bool, scheduler string) (string, error) {
			v := values(t, "values-patched.yaml", vals)
			return helm4.Template(t.Context(), chart, "mageai", ns, v, mode(v, standalone, scheduler)...)
		}},
		// Argo CD: kustomize's helmCharts inflation with the components.
		{"kustomize-helmCharts", false, func(t *testing.T, vals map[string]any, standalone bool, scheduler string) (string, error) {
			if scheduler != "" {
				t.Skip("the overlay names the scheduler in its select component; a renamed one is the user's edit")
			}
			overlay := "single"
			if standalone {
				overlay = "standalone"
			}
			return framework.RenderInflated(t.Context(), env.BinDir, filepath.Join(repo, "deploy/helm/inflate", overlay), chart, ns, vals, "")
		}},
		// Flux: the HelmRelease's postRenderers, as helm-controller
		// applies them.
		{"flux", true, func(t *testing.T, vals map[string]any, standalone bool, scheduler string) (string, error) {
			v := map[string]any{}
			for k, x := range vals {
				v[k] = x
			}
			mode(v, standalone, scheduler)
			target := ""
			if standalone {
				target = "mageai-scheduler"
				if scheduler != "" {
					target = scheduler
				}
			}
			return framework.RenderFlux(filepath.Join(repo, "deploy/flux/helmrelease.yaml"), chart, "mageai", ns, v, target)
		}},
	}
}

// release is a rendered release, by kind and name.
type release struct {
	deployments map[string]*appsv1.Deployment
	cronJobs    map[string]*batchv1.CronJob
	kinds       map[string][]string
}

func parseRelease(t *testing.T, manifests string) release {
	t.Helper()
	r := release{deployments: map[string]*appsv1.Deployment{}, cronJobs: map[string]*batchv1.CronJob{}, kinds: map[string][]string{}}
	for _, doc := range strings.Split("\n"+manifests, "\n---\n") {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "" {
			continue
		}
		r.kinds[meta.Kind] = append(r.kinds[meta.Kind], meta.Metadata.Name)
		switch meta.Kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			if err := yaml.Unmarshal([]byte(doc), d); err != nil {
				t.Fatal(err)
			}
			r.deployments[d.Name] = d
		case "CronJob":
			c := &batchv1.CronJob{}
			if err := yaml.Unmarshal([]byte(doc), c); err != nil {
				t.Fatal(err)
			}
			r.cronJobs[c.Name] = c
		}
	}
	return r
}

// container finds a container by name, never by position.
func container(spec corev1.PodSpec, name string) (*corev1.Container, int) {
	var found *corev1.Container
	n := 0
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			found = &spec.Containers[i]
			n++
		}
	}
	return found, n
}

// TestHelmRoutes renders the stand-in of Mage's mageai chart through every
// install route (Helm 3 with the post-renderer, Helm 4 with the plugin,
// Argo CD's kustomize inflation, Flux's post-renderers), in both of the
// chart's modes, with a scheduler renamed, and with a user's own list
// values layered on (env, volumes and a container of theirs, the chart's
// log-search container ahead of extraContainers, its cleanup CronJob and
// k8sExecutorConfig), and has the real API server validate the result
// (server-side dry run). The agent lands once, in the pod that runs Mage's
// executors; the Mage container (found by name) has the trigger; the
// chart's RoleBindings are gone; a Helm route emits nothing the
// prerequisites own; and the user's values survive.
func TestHelmRoutes(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "helm")
	kubectl := func(stdin string, args ...string) string { t.Helper(); return env.Kubectl(t, ns, stdin, args...) }
	kubectl("", "apply", "-k", filepath.Join(repo, "deploy/helm/prereqs"))
	// A user's own values: what Helm's list replacement would lose.
	userLists := func() map[string]any {
		return map[string]any{
			"extraEnvs": []any{
				map[string]any{"name": "KUBE_NAMESPACE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}}},
				map[string]any{"name": "MAGE_DATABASE_CONNECTION_URL", "value": "postgresql://mage@127.0.0.1:5432/mage"},
			},
			"extraVolumes": []any{
				map[string]any{"name": "mage-fs", "persistentVolumeClaim": map[string]any{"claimName": "mage-fs"}},
				map[string]any{"name": "cloudsql", "emptyDir": map[string]any{}},
			},
			"extraVolumeMounts": []any{
				map[string]any{"name": "mage-fs", "mountPath": "/home/src"},
				map[string]any{"name": "cloudsql", "mountPath": "/cloudsql"},
			},
			"extraContainers": []any{
				map[string]any{"name": "cloud-sql-proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1",
					"volumeMounts": []any{map[string]any{"name": "cloudsql", "mountPath": "/cloudsql"}}},
			},
			"logSearch":         map[string]any{"enabled": true},
			"cleanupJob":        map[string]any{"enabled": true},
			"k8sExecutorConfig": map[string]any{"enabled": true, "resource_limits": map[string]any{"memory": "1Gi"}},
		}
	}
	// The same user, with the chart's volumes and env instead (they
	// replace extraVolumes/extraVolumeMounts and extraEnvs).
	userReplacing := func() map[string]any {
		return map[string]any{
			"volumes": []any{map[string]any{"name": "mage-fs", "persistentVolumeClaim": map[string]any{"claimName": "mage-fs"}}},
			"env":     []any{map[string]any{"name": "MAGE_DATABASE_CONNECTION_URL", "value": "postgresql://mage@127.0.0.1:5432/mage"}},
		}
	}
	for _, r := range routes(t, repo, ns) {
		for _, tc := range []struct {
			name       string
			standalone bool
			scheduler  string
			user       func() map[string]any
		}{
			{"single", false, "", nil},
			{"standalone", true, "", nil},
			{"standalone-renamed-scheduler", true, "etl-scheduler", nil},
			{"single-user-lists", false, "", userLists},
			{"standalone-user-lists", true, "", userLists},
			{"single-user-volumes-env", false, "", userReplacing},
		} {
			t.Run(r.name+"/"+tc.name, func(t *testing.T) {
				vals := map[string]any{}
				if tc.user != nil {
					if r.name == "helm3" && tc.name != "standalone-user-lists" {
						t.Skip("values.yaml carries the agent in the chart's lists: a user's lists replace them (the post-renderer refuses volumes/env; see its test below)")
					}
					vals = tc.user()
				}
				manifests, err := r.render(t, vals, tc.standalone, tc.scheduler)
				if err != nil {
					t.Fatal(err)
				}
				rel := parseRelease(t, manifests)
				mageDeployment, others := "mageai", []string{}
				if tc.standalone {
					mageDeployment, others = "mageai-scheduler", []string{"mageai-webserver"}
					if tc.scheduler != "" {
						mageDeployment = tc.scheduler
					}
				}
				d := rel.deployments[mageDeployment]
				if d == nil {
					t.Fatalf("no Deployment %s: %v", mageDeployment, rel.kinds["Deployment"])
				}
				spec := d.Spec.Template.Spec
				if _, n := container(spec, "magekube-agent"); n != 1 {
					t.Errorf("%s has %d agent containers, want 1", mageDeployment, n)
				}
				mage, _ := container(spec, "mageai")
				if mage == nil || !strings.Contains(yamlOf(t, mage.Env), "/opt/magekube/python") {
					t.Errorf("%s: the Mage container lacks the trigger", mageDeployment)
				}
				if spec.ServiceAccountName != "magekube-agent" || spec.AutomountServiceAccountToken != nil && *spec.AutomountServiceAccountToken {
					t.Errorf("%s: service account %q, automount %v: want the token split", mageDeployment, spec.ServiceAccountName, spec.AutomountServiceAccountToken)
				}
				for _, name := range others {
					if _, n := container(rel.deployments[name].Spec.Template.Spec, "magekube-agent"); n != 0 {
						t.Errorf("%s has %d agent containers, want none", name, n)
					}
				}
				if len(rel.kinds["RoleBinding"]) > 0 && r.helmCLI || len(rel.kinds["RoleBinding"]) > 1 {
					t.Errorf("RoleBindings %v: only the agent's own Role may be bound (the chart's Roles would reach the agent's token)", rel.kinds["RoleBinding"])
				}
				if r.helmCLI && slices.Contains(rel.kinds["ConfigMap"], "magekube-mage") {
					t.Error("the release has the ConfigMap magekube-mage, which deploy/helm/prereqs owns: helm install would stop on its ownership")
				}
				if tc.user != nil {
					userKept(t, rel, tc.name, mageDeployment, mage, spec)
				}
				if r.helmCLI {
					kubectl(manifests, "apply", "--dry-run=server", "-f", "-")
				} else {
					// One application: the prerequisites' objects are in it.
					kubectl(manifests, "apply", "--dry-run=server", "--force-conflicts", "--server-side", "-f", "-")
				}
			})
		}
	}
}

// userKept checks a user's own values in the release.
func userKept(t *testing.T, rel release, caseName, name string, mage *corev1.Container, spec corev1.PodSpec) {
	t.Helper()
	if !strings.Contains(yamlOf(t, mage.Env), "MAGE_DATABASE_CONNECTION_URL") {
		t.Errorf("%s: the user's MAGE_DATABASE_CONNECTION_URL is gone", name)
	}
	if caseName == "single-user-volumes-env" {
		return
	}
	if !strings.Contains(yamlOf(t, mage.VolumeMounts), "/cloudsql") {
		t.Errorf("%s: the user's /cloudsql mount is gone", name)
	}
	if !strings.Contains(yamlOf(t, mage.Env), "K8S_DEFAULT_CONFIG_PATH") {
		t.Errorf("%s: the chart's k8sExecutorConfig is gone", name)
	}
	if !strings.HasPrefix(caseName, "standalone") {
		if _, n := container(spec, "cloud-sql-proxy"); n != 1 {
			t.Errorf("%s: the user's cloud-sql-proxy container is gone", name)
		}
		if _, n := container(spec, "fluent-bit"); n != 1 {
			t.Errorf("%s: the chart's fluent-bit container is gone", name)
		}
	}
	cron := rel.cronJobs["mageai-cleanup-job"]
	if cron == nil {
		t.Fatalf("no cleanup CronJob: %v", rel.kinds)
	}
	if _, n := container(cron.Spec.JobTemplate.Spec.Template.Spec, "magekube-agent"); n != 0 {
		t.Error("the cleanup CronJob has an agent")
	}
}

// TestHelmPostRendererRefuses: what fails, fails loudly, naming the fix,
// through Helm 3's exec post-renderer and Helm 4's plugin alike (Helm 4
// shows no plugin message: the plugin's failure is the signal there).
func TestHelmPostRendererRefuses(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(repo, framework.MageChart)
	helm4, err := framework.NewHelm4(t.Context(), env.BinDir, repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, values, want string
		set                map[string]any
	}{
		{"renamed-scheduler-not-named", "values-standalone.yaml", "--scheduler-name", map[string]any{"scheduler": map[string]any{"name": "etl-scheduler"}}},
		{"single-mode-values-with-standalone", "values.yaml", "with standaloneScheduler: true use deploy/helm/values-standalone.yaml", map[string]any{"standaloneScheduler": true}}, // the trigger twice
		{"renamed-deployment-not-named", "values-patched.yaml", "--deployment-name", map[string]any{"fullnameOverride": "etl"}},
		{"values-yaml-with-volumes", "values.yaml", "the values set volumes:", map[string]any{"volumes": []any{map[string]any{"name": "mage-fs", "emptyDir": map[string]any{}}}}},
		{"values-yaml-with-env", "values.yaml", "the values set env:", map[string]any{"env": []any{map[string]any{"name": "A", "value": "b"}}}},
		{"two-agents", "values.yaml", "2 magekube agent containers", map[string]any{"extraContainers": []any{
			map[string]any{"name": "magekube-agent", "image": "a", "volumeMounts": []any{map[string]any{"name": "magekube-agent-token", "mountPath": "/t"}}},
			map[string]any{"name": "magekube-agent", "image": "b", "volumeMounts": []any{map[string]any{"name": "magekube-agent-token", "mountPath": "/t"}}},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := framework.HelmValues(filepath.Join(repo, "deploy/helm", tc.values))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.set {
				vals[k] = v
			}
			_, err = framework.RenderChart(chart, "mageai", "helm", vals, filepath.Join(repo, "deploy/helm/post-render.sh"), env.BinDir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm 3 post-renderer: %v, want an error saying %q", err, tc.want)
			}
			if _, err := helm4.Template(context.Background(), chart, "mageai", "helm", vals); err == nil {
				t.Error("helm 4 plugin: rendered, want it refused")
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
