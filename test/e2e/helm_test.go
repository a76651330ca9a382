//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestMageOnTheHelmChart follows the README's Helm section on kind: the
// prerequisites applied with kubectl, the stand-in of Mage's mageai chart
// (its hooks; the chart cannot be fetched here) rendered with Helm's Go
// library, deploy/helm/values.yaml and post-render.sh, applied; then a
// pipeline triggered through Mage's API runs its block as a Job of the
// agent, and Mage says completed.
func TestMageOnTheHelmChart(t *testing.T) {
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "helm")
	shared := projectVolume(t, ns)
	kubectl := func(stdin string, args ...string) { t.Helper(); env.Kubectl(t, ns, stdin, args...) }
	// What the user has before the chart: the project volume and Mage's
	// database (Mage starts its scheduler once: the database comes first).
	kubectl(framework.ProjectPV(ns, shared)+"---\n"+framework.ProjectClaim+"---\n"+framework.Postgres(env.PostgresImage), "apply", "-f", "-")
	kubectl("", "rollout", "status", "deployment/postgres", "--timeout=3m")
	// The README's two steps.
	kubectl("", "apply", "-k", filepath.Join(repo, "deploy/helm/prereqs"))
	vals, err := framework.HelmValues(filepath.Join(repo, "deploy/helm/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	localImages(t, vals)
	manifests, err := framework.RenderChart(filepath.Join(repo, framework.MageChart), "mageai", ns, vals,
		filepath.Join(repo, "deploy/helm/post-render.sh"), env.BinDir)
	if err != nil {
		t.Fatal(err)
	}
	kubectl(manifests, "apply", "-f", "-")

	mage := &mageAPI{ns: ns, name: "mageai", shared: shared}
	diag := func() string {
		return podDiagnostics(t, ns) + mageLog(t, ns, "app.kubernetes.io/name=mageai", "mageai")
	}
	waitFor(t, 5*time.Minute, "Mage's API to answer a login", func() bool { return mage.login(t.Context()) == nil }, diag)
	checkTokenSplit(t, ns, "app.kubernetes.io/name=mageai", false)
	writePipeline(t, filepath.Join(shared, "default_repo"), "charted", "k8s", []block{
		{"hello", "data_loader", "print('hello from the chart')\n    return [{'n': 1}]"},
	})
	run := mage.trigger(t, "charted")
	if status := mage.waitRun(t, run, diag); status != "completed" {
		t.Fatalf("pipeline run charted: %s, want completed\n%s", status, diag())
	}
	runs := magekubeRuns(t, shared, "charted")
	if len(runs) != 1 || runs[0].Status.Phase != protocol.PhaseSucceeded {
		t.Fatalf("magekube runs of charted: %+v, want one Succeeded", runs)
	}
	if logs := runLogs(t, shared, runs); !strings.Contains(logs, "hello from the chart") {
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
}

// localImages points the values at the images built here, and gives the
// Mage container what block Jobs must share with it (README): Mage's
// database and its block outputs on the project volume.
func localImages(t *testing.T, vals map[string]any) {
	t.Helper()
	i := strings.LastIndex(env.MageImage, ":")
	name, tag := env.MageImage[:i], env.MageImage[i+1:]
	vals["image"] = map[string]any{"repository": name, "tag": tag, "pullPolicy": "IfNotPresent"}
	containers, _ := vals["extraContainers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("values.yaml: %d extraContainers, want the agent", len(containers))
	}
	agent, _ := containers[0].(map[string]any)
	agent["image"], agent["imagePullPolicy"] = env.AgentImage, "IfNotPresent"
	envs, _ := vals["extraEnvs"].([]any)
	vals["extraEnvs"] = append(envs,
		map[string]any{"name": "MAGE_DATABASE_CONNECTION_URL", "value": framework.DatabaseURL},
		map[string]any{"name": "MAGE_DATA_DIR", "value": "/home/src/mage_data"})
}
