//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestRealMage deploys deploy/manifests/examples/mage-stack with `kubectl
// apply -k`, as a user does, on kind: the real Mage server (the pinned
// mage-ai release), the agent sidecar, the Mage-side trigger and Jaeger.
// It writes two pipelines with executor_type k8s into the project Mage
// created, triggers each through Mage's own API, and checks Mage's own
// pipeline and block runs, the run files, the Jobs and the traces.
func TestRealMage(t *testing.T) {
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	ns := env.Namespace(t, "mage")
	shared := filepath.Join(sharedDir(t), ns)
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	if err := framework.KindStack(overlay, repo, ns, shared, env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().PersistentVolumes().Delete(context.Background(), ns+"-mage-fs", metav1.DeleteOptions{})
	})
	apply := exec.CommandContext(t.Context(), filepath.Join(env.BinDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "apply", "-k", overlay)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k: %v\n%s", err, out)
	}

	mage := &mageAPI{ns: ns}
	diag := func() string { return podDiagnostics(t, ns) + mageLog(t, ns) }
	waitFor(t, 5*time.Minute, "Mage's API to answer a login", func() bool { return mage.login(t.Context()) == nil }, diag)
	checkTokenSplit(t, ns)

	// The project `mage start default_repo` created on the shared volume.
	project := filepath.Join(shared, "default_repo")
	writePipeline(t, project, "etl", "load", "data_loaders", "print('loaded 42 rows')\n    return 42")
	writePipeline(t, project, "broken", "explode", "data_loaders", "raise ValueError('exploded on purpose')")

	for _, c := range []struct{ pipeline, want string }{{"etl", "completed"}, {"broken", "failed"}} {
		t.Run(c.pipeline, func(t *testing.T) {
			run := mage.trigger(t, c.pipeline)
			var status string
			waitFor(t, 5*time.Minute, "Mage's pipeline run "+c.pipeline+" to end", func() bool {
				status = mage.runStatus(t, run)
				return status == "completed" || status == "failed" || status == "cancelled"
			}, diag)
			if status != c.want {
				t.Errorf("pipeline run %s: %s, want %s\n%s", c.pipeline, status, c.want, diag())
			}
			checkRunFiles(t, shared, c.pipeline, c.want == "completed")
		})
	}
	waitFor(t, time.Minute, "a Dispatched event on a Job", func() bool {
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=Dispatched"})
		return err == nil && len(evs.Items) > 0
	}, func() string { return "" })
}

// checkTokenSplit: only the agent container mounts a Kubernetes token.
func checkTokenSplit(t *testing.T, ns string) {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mage"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the Mage pod: %v, %d pods", err, len(pods.Items))
	}
	pod := pods.Items[0]
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
}

// writePipeline writes a one-block Python pipeline run by Mage's k8s
// executor, in Mage's own file layout.
func writePipeline(t *testing.T, project, pipeline, block, dir, body string) {
	t.Helper()
	files := map[string]string{
		filepath.Join("pipelines", pipeline, "metadata.yaml"): fmt.Sprintf(`uuid: %[1]s
name: %[1]s
type: python
executor_type: k8s
blocks:
- uuid: %[2]s
  name: %[2]s
  type: data_loader
  language: python
  executor_type: k8s
  upstream_blocks: []
  downstream_blocks: []
`, pipeline, block),
		filepath.Join(dir, block+".py"): fmt.Sprintf(`if 'data_loader' not in globals():
    from mage_ai.data_preparation.decorators import data_loader


@data_loader
def %s(*args, **kwargs):
    %s
`, block, body),
	}
	for rel, content := range files {
		p := filepath.Join(project, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRunFiles finds the pipeline's magekube run and checks its outcome,
// its Job's log and its trace in the in-cluster Jaeger.
func checkRunFiles(t *testing.T, shared, pipeline string, ok bool) {
	t.Helper()
	layout := protocol.Layout{Root: filepath.Join(shared, ".magekube")}
	entries, err := os.ReadDir(filepath.Join(layout.Root, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	var found []protocol.Status
	for _, e := range entries {
		var req struct {
			Pipeline string `json:"pipeline_uuid"`
		}
		var s protocol.Status
		data, err := os.ReadFile(layout.RunFile(e.Name(), protocol.RequestFile))
		if err != nil || json.Unmarshal(data, &req) != nil || req.Pipeline != pipeline {
			continue
		}
		if data, err = os.ReadFile(layout.RunFile(e.Name(), protocol.StatusFile)); err == nil && json.Unmarshal(data, &s) == nil {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no magekube run for pipeline %s under %s", pipeline, layout.Root)
	}
	s := found[len(found)-1]
	if (s.Phase == protocol.PhaseSucceeded) != ok {
		t.Errorf("run %s: phase %s reason %s message %q", s.ID, s.Phase, s.Reason, s.Message)
	}
	log, _ := os.ReadFile(layout.RunFile(s.ID, protocol.LogFile))
	want := "loaded 42 rows"
	if !ok {
		want = "exploded on purpose"
	}
	if !strings.Contains(string(log), want) {
		t.Errorf("run %s log lacks %q:\n%s", s.ID, want, log)
	}
	if s.TraceID == "" {
		t.Errorf("run %s has no trace id", s.ID)
		return
	}
	var spans int
	waitFor(t, time.Minute, "run "+s.ID+"'s trace in Jaeger", func() bool {
		raw, err := env.Client.CoreV1().RESTClient().Get().
			AbsPath("/api/v1/namespaces", s.Namespace, "services", "jaeger:16686", "proxy", "api", "traces", s.TraceID).DoRaw(t.Context())
		if err != nil {
			return false
		}
		spans = strings.Count(string(raw), `"operationName"`)
		return spans >= 6
	}, func() string { return fmt.Sprintf("%d spans", spans) })
}

// mageAPI is Mage's REST API, reached through the API server's service
// proxy, logged in as Mage's default owner.
type mageAPI struct {
	ns     string
	cookie string
}

// apiKey is the client id of Mage's own web app, which its API requires.
const apiKey = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"

func (m *mageAPI) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	req := env.Client.CoreV1().RESTClient().Verb(method).
		AbsPath(append([]string{"/api/v1/namespaces", m.ns, "services", "mage:6789", "proxy", "api"}, strings.Split(path, "/")...)...).
		SetHeader("X-API-KEY", apiKey).SetHeader("Content-Type", "application/json")
	if m.cookie != "" {
		req = req.SetHeader("Cookie", "oauth_token="+m.cookie)
	}
	if body != nil {
		data, _ := json.Marshal(body)
		req = req.Body(data)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := req.DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", method, path, err, raw)
	}
	if e, ok := out["error"]; ok {
		return nil, fmt.Errorf("%s %s: %v", method, path, e)
	}
	return out, nil
}

func (m *mageAPI) login(ctx context.Context) error {
	out, err := m.call(ctx, "POST", "sessions", map[string]any{"session": map[string]string{"email": "admin@admin.com", "password": "admin"}})
	if err != nil {
		return err
	}
	session, _ := out["session"].(map[string]any)
	token, _ := session["token"].(string)
	if token == "" {
		return fmt.Errorf("no session token in %v", out)
	}
	m.cookie = token
	return nil
}

// trigger makes an API trigger for pipeline and runs it once, as a
// user's `curl` to the trigger's URL does; it returns Mage's run id.
func (m *mageAPI) trigger(t *testing.T, pipeline string) int {
	t.Helper()
	out, err := m.call(t.Context(), "POST", "pipelines/"+pipeline+"/pipeline_schedules",
		map[string]any{"pipeline_schedule": map[string]string{"name": "e2e-" + pipeline, "schedule_type": "api", "status": "active"}})
	if err != nil {
		t.Fatal(err)
	}
	schedule, _ := out["pipeline_schedule"].(map[string]any)
	id, token := fmt.Sprint(schedule["id"]), fmt.Sprint(schedule["token"])
	out, err = m.call(t.Context(), "POST", "pipeline_schedules/"+id+"/pipeline_runs/"+token, map[string]any{"pipeline_run": map[string]any{"variables": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := out["pipeline_run"].(map[string]any)
	n, ok := run["id"].(float64)
	if !ok {
		t.Fatalf("no pipeline run id in %v", out)
	}
	return int(n)
}

func (m *mageAPI) runStatus(t *testing.T, run int) string {
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("pipeline_runs/%d", run), nil)
	if err != nil {
		t.Log(err)
		return ""
	}
	r, _ := out["pipeline_run"].(map[string]any)
	s, _ := r["status"].(string)
	return s
}

// mageLog is the tail of the Mage container's log, for a failing test.
func mageLog(t *testing.T, ns string) string {
	pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mage"})
	if err != nil || len(pods.Items) == 0 {
		return ""
	}
	tail := int64(60)
	logs, err := env.Client.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: "mage", TailLines: &tail}).DoRaw(context.Background())
	return fmt.Sprintf("mage log (%v):\n%s\n", err, logs)
}
