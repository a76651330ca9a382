//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestMageOnTheHelmChart installs Mage's mageai chart with magekube on
// kind by two of the README's routes, each in its own namespace, and runs
// a pipeline through Mage's API in each: its block runs as a Job of the
// agent, and Mage says completed. The chart is the stand-in of the
// official one (its hooks, from facts read in its source; the chart
// cannot be fetched here).
//   - helm4-plugin: the prerequisites with kubectl, then `helm install`
//     (Helm 4) with the magekube plugin as post-renderer,
//     values-patched.yaml over the user's own values (their database URL
//     and a container of theirs in the chart's lists), single-Deployment
//     mode.
//   - kustomize-helmCharts: Argo CD's route, `kustomize build
//     --enable-helm` of deploy/helm/inflate/standalone applied with
//     kubectl: standaloneScheduler mode, the agent in the scheduler's pod.
func TestMageOnTheHelmChart(t *testing.T) {
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(repo, framework.MageChart)
	for _, tc := range []struct {
		route      string
		mageSel    string // the pod that runs Mage's executors, and the agent
		install    func(t *testing.T, ns string, vals map[string]any)
		userExtras bool
	}{
		{route: "helm4-plugin", mageSel: "app.kubernetes.io/name=mageai", userExtras: true, install: func(t *testing.T, ns string, vals map[string]any) {
			env.Kubectl(t, ns, "", "apply", "-k", filepath.Join(repo, "deploy/helm/prereqs"))
			helm, err := framework.NewHelm4(t.Context(), env.BinDir, repo, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			user, err := helm.ValuesFile("user.yaml", vals)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := helm.Run(t.Context(), "install", "mageai", chart, "--kubeconfig", env.Kubeconfig, "-n", ns,
				"-f", user, "-f", filepath.Join(repo, "deploy/helm/values-patched.yaml"),
				"--post-renderer", "magekube", "--post-renderer-args", "--agent-image="+env.AgentImage); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = helm.Run(t.Context(), "uninstall", "mageai", "--kubeconfig", env.Kubeconfig, "-n", ns) })
		}},
		{route: "kustomize-helmCharts", mageSel: "app.kubernetes.io/name=mageai-scheduler", install: func(t *testing.T, ns string, vals map[string]any) {
			manifests, err := framework.RenderInflated(t.Context(), env.BinDir, filepath.Join(repo, "deploy/helm/inflate/standalone"), chart, ns, vals, env.AgentImage)
			if err != nil {
				t.Fatal(err)
			}
			env.Kubectl(t, ns, manifests, "apply", "-f", "-")
		}},
	} {
		t.Run(tc.route, func(t *testing.T) {
			ns := env.Namespace(t, "helm")
			shared := projectVolume(t, ns)
			kubectl := func(stdin string, args ...string) { t.Helper(); env.Kubectl(t, ns, stdin, args...) }
			// What the user has before the chart: the project volume and
			// Mage's database (Mage starts its scheduler once: the
			// database comes first).
			kubectl(framework.ProjectPV(ns, shared)+"---\n"+framework.ProjectClaim+"---\n"+framework.Postgres(env.PostgresImage), "apply", "-f", "-")
			kubectl("", "rollout", "status", "deployment/postgres", "--timeout=3m")
			tc.install(t, ns, userValues(tc.userExtras))

			mage := &mageAPI{ns: ns, name: "mageai", shared: shared}
			diag := func() string {
				return podDiagnostics(t, ns) + mageLog(t, ns, tc.mageSel, "mageai")
			}
			waitFor(t, 5*time.Minute, "Mage's API to answer a login", func() bool { return mage.login(t.Context()) == nil }, diag)
			checkTokenSplit(t, ns, tc.mageSel, true)
			if tc.userExtras {
				pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: tc.mageSel})
				if err != nil || len(pods.Items) != 1 {
					t.Fatalf("the Mage pod: %v", err)
				}
				names := map[string]bool{}
				for _, c := range pods.Items[0].Spec.Containers {
					names[c.Name] = true
				}
				if !names["users-sidecar"] || !names["magekube-agent"] || !names["mageai"] {
					t.Errorf("the Mage pod's containers %v: want the user's own, the agent and Mage's", names)
				}
			}
			pipeline := strings.ReplaceAll(tc.route, "-", "_")
			writePipeline(t, filepath.Join(shared, "default_repo"), pipeline, "k8s", []block{
				{"hello", "data_loader", fmt.Sprintf("print('hello from %s')\n    return [{'n': 1}]", tc.route)},
			})
			run := mage.trigger(t, pipeline)
			if status := mage.waitRun(t, run, diag); status != "completed" {
				t.Fatalf("pipeline run %s: %s, want completed\n%s", pipeline, status, diag())
			}
			runs := magekubeRuns(t, shared, pipeline)
			if len(runs) != 1 || runs[0].Status.Phase != protocol.PhaseSucceeded {
				t.Fatalf("magekube runs of %s: %+v, want one Succeeded", pipeline, runs)
			}
			if logs := runLogs(t, shared, runs); !strings.Contains(logs, "hello from "+tc.route) {
				t.Errorf("the Job's log lacks the block's output:\n%s", logs)
			}
			jobs, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{LabelSelector: jobspec.LabelManagedBy + "=" + jobspec.ManagedByValue})
			if err != nil || len(jobs.Items) != 1 {
				t.Errorf("the agent's Jobs in %s: %v, %d, want 1", ns, err, len(jobs.Items))
			}
			bindings, err := env.Client.RbacV1().RoleBindings(ns).List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bindings.Items {
				if b.Name != "magekube-agent" {
					t.Errorf("RoleBinding %s: only the agent's own Role should be bound", b.Name)
				}
			}
		})
	}
}

// userValues are the chart values of a user of the images built here,
// with what block Jobs must share with the Mage container (README):
// Mage's database and its block outputs on the project volume, in the
// chart's extraEnvs; with extras, a container of the user's own too.
func userValues(extras bool) map[string]any {
	i := strings.LastIndex(env.MageImage, ":")
	vals := map[string]any{
		"image": map[string]any{"repository": env.MageImage[:i], "tag": env.MageImage[i+1:], "pullPolicy": "IfNotPresent"},
		"extraEnvs": []any{
			map[string]any{"name": "KUBE_NAMESPACE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}}},
			map[string]any{"name": "MAGE_DATABASE_CONNECTION_URL", "value": framework.DatabaseURL},
			map[string]any{"name": "MAGE_DATA_DIR", "value": "/home/src/mage_data"},
		},
		"extraVolumes":      []any{map[string]any{"name": "mage-fs", "persistentVolumeClaim": map[string]any{"claimName": "mage-fs"}}},
		"extraVolumeMounts": []any{map[string]any{"name": "mage-fs", "mountPath": "/home/src"}},
	}
	if extras {
		// A sidecar of the user's (it only has to run).
		vals["extraContainers"] = []any{map[string]any{"name": "users-sidecar", "image": env.MageImage, "imagePullPolicy": "IfNotPresent",
			"command": []any{"sleep", "infinity"}}}
	}
	return vals
}
