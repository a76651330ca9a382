//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
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
	st := startStack(t, "mage")
	ns, shared, repo, overlay, mage, diag := st.ns, st.shared, st.repo, st.overlay, st.mage, st.diag
	checkTokenSplit(t, ns, "app.kubernetes.io/name=mage", true)

	// The project `mage start default_repo` created on the shared volume.
	project := filepath.Join(shared, "default_repo")
	writePipeline(t, project, "etl", "k8s", []block{
		// Rows, then a dict: shapes Mage hands on unchanged between blocks
		// in separate processes (a one-element list comes back as its
		// element, as with Mage's own k8s executor).
		{"load", "data_loader", "rows = [{'n': 3}, {'n': 2}, {'n': 1}]\n    print(f'loaded {len(rows)} rows')\n    return rows"},
		{"transform", "transformer", "total = sum(r['n'] for r in data)\n    print(f'total {total} from upstream')\n    return {'total': total * 7}"},
		{"report", "data_exporter", "print(f\"report {data['total']}\")"},
	})
	writePipeline(t, project, "broken", "k8s", []block{
		{"seed", "data_loader", "return [{'n': 1}]"}, // block files are the project's: a name of its own
		{"explode", "transformer", "raise ValueError('exploded on purpose')"},
	})
	writePipeline(t, project, "slow", "k8s", []block{
		{"wait", "data_loader", "import time\n    time.sleep(600)"},
	})

	t.Run("etl", func(t *testing.T) {
		run := mage.trigger(t, "etl")
		if status := mage.waitRun(t, run, diag); status != "completed" {
			t.Fatalf("pipeline run etl: %s, want completed\n%s\nthe Jobs' logs:\n%s", status, diag(), runLogs(t, shared, magekubeRuns(t, shared, "etl")))
		}
		for _, b := range mage.blockRuns(t, run) {
			if b.Status != "completed" {
				t.Errorf("Mage's block run %s: %s", b.Block, b.Status)
			}
		}
		runs := magekubeRuns(t, shared, "etl")
		if len(runs) != 3 {
			t.Fatalf("%d magekube runs for etl, want 3 (one Job per block)", len(runs))
		}
		// Mage's scheduler ticks every 10 s; the trigger wakes it when a
		// block run ends, so the next block's request follows at once.
		t.Logf("between dependent blocks (a Job's end to the next block's claim): %s", chainGaps(runs))
		traces := map[string]bool{}
		for _, r := range runs {
			if r.Status.Phase != protocol.PhaseSucceeded {
				t.Errorf("run %s: %s %s %q", r.Status.ID, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
			traces[r.Status.TraceID] = true
		}
		// Block outputs travel between the Jobs as in Mage: report printed
		// transform's result of load's rows.
		logs := runLogs(t, shared, runs)
		for _, want := range []string{"loaded 3 rows", "total 6 from upstream", "report 42"} {
			if !strings.Contains(logs, want) {
				t.Errorf("the Jobs' logs lack %q", want)
			}
		}
		// The pipeline run is one trace: three blocks' spans in it.
		if len(traces) != 1 {
			t.Fatalf("the pipeline run's blocks are in %d traces, want 1: %v", len(traces), traces)
		}
		for id := range traces {
			waitSpans(t, ns, id, 3*6)
		}
	})

	t.Run("broken", func(t *testing.T) {
		run := mage.trigger(t, "broken")
		if status := mage.waitRun(t, run, diag); status != "failed" {
			t.Fatalf("pipeline run broken: %s, want failed\n%s", status, diag())
		}
		var failed *mageBlockRun
		for _, b := range mage.blockRuns(t, run) {
			if b.Block == "explode" {
				failed = &b
			}
		}
		if failed == nil || failed.Status != "failed" {
			t.Errorf("Mage's block run explode: %+v", failed)
		}
		// The agent's reason reaches Mage: the block run's log in Mage's
		// logs API (what its UI shows) carries Mage's usual executor error
		// with the agent's reason. The block's own `mage run` records the
		// failure in Mage's database as it ends, so Mage may fail the
		// pipeline run a moment before the waiting process logs it.
		var logs string
		waitFor(t, time.Minute, "the agent's reason in Mage's logs of pipeline run "+fmt.Sprint(run), func() bool {
			logs = mage.runLogs(t, "broken", run)
			return strings.Contains(logs, "Failed to execute k8s job") && strings.Contains(logs, "BackoffLimitExceeded")
		}, func() string { return fmt.Sprintf("%.3000s", logs) })
		jobLogs := runLogs(t, shared, magekubeRuns(t, shared, "broken"))
		if !strings.Contains(jobLogs, "exploded on purpose") {
			t.Errorf("the failing Job's log lacks the block's error:\n%s", jobLogs)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		run := mage.trigger(t, "slow")
		var job string
		waitFor(t, 3*time.Minute, "the slow block's Job to run", func() bool {
			mage.unstall(t, "slow")
			for _, r := range magekubeRuns(t, shared, "slow") {
				if r.Status.Phase == protocol.PhaseRunning {
					job = r.Status.Job
					return true
				}
			}
			return false
		}, diag)
		if _, err := mage.call(t.Context(), "PUT", fmt.Sprintf("pipeline_runs/%d", run), map[string]any{"pipeline_run": map[string]string{"status": "cancelled"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "the cancelled run's Job "+job+" to be deleted", func() bool {
			_, err := env.Client.BatchV1().Jobs(ns).Get(t.Context(), job, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, diag)
		waitFor(t, time.Minute, "the magekube run to be Cancelled", func() bool {
			runs := magekubeRuns(t, shared, "slow")
			return len(runs) == 1 && runs[0].Status.Phase == protocol.PhaseCancelled
		}, diag)
		if status := mage.runStatus(t, run); status != "cancelled" {
			t.Errorf("Mage's pipeline run: %s, want cancelled", status)
		}
	})

	// A ResourceQuota refuses the block's pod: Mage's block run fails at
	// once with the agent's reason and the API's own message, instead of
	// waiting for the start timeout. A quota of zero NotBestEffort pods
	// refuses every new pod with requests (a Job's pod has the runner's);
	// the pods already running stay.
	t.Run("quota", func(t *testing.T) {
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-new-pods"}, Spec: corev1.ResourceQuotaSpec{
			Hard:   corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")},
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotBestEffort},
		}}
		if _, err := env.Client.CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = env.Client.CoreV1().ResourceQuotas(ns).Delete(context.Background(), q.Name, metav1.DeleteOptions{})
		}()
		waitFor(t, time.Minute, "the quota's status", func() bool {
			got, err := env.Client.CoreV1().ResourceQuotas(ns).Get(t.Context(), q.Name, metav1.GetOptions{})
			return err == nil && got.Status.Hard != nil
		}, diag)
		start := time.Now()
		run := mage.trigger(t, "broken")
		if status := mage.waitRun(t, run, diag); status != "failed" {
			t.Fatalf("pipeline run under a quota of zero pods: %s, want failed\n%s", status, diag())
		}
		t.Logf("Mage's pipeline run failed %s after the trigger", time.Since(start).Round(time.Second))
		logs := mage.runLogs(t, "broken", run)
		if !strings.Contains(logs, "QuotaExceeded") || !strings.Contains(logs, "exceeded quota: no-new-pods") {
			t.Errorf("Mage's logs of pipeline run %d lack the reason and the API's message: %.3000s", run, logs)
		}
	})

	// The rollback switch, as docs/operations describes it: the rollback
	// component listed last and the overlay applied; Mage's own
	// Kubernetes executor runs the pipeline (its Jobs, its names, no
	// magekube run); the component removed and the overlay applied again,
	// magekube runs it.
	t.Run("rollback", func(t *testing.T) {
		off := t.TempDir()
		component, err := filepath.Rel(off, filepath.Join(repo, "deploy/manifests/rollback"))
		if err != nil {
			t.Fatal(err)
		}
		base, err := filepath.Rel(off, overlay)
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources: [%s]\ncomponents: [%s]\n", ns, base, component)
		if err := os.WriteFile(filepath.Join(off, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(magekubeRuns(t, shared, "etl"))

		start := time.Now()
		env.Kubectl(t, ns, "", "apply", "-k", off)
		rollout(t, ns, "mage", diag)
		relogin(t, mage, "Mage's API after switching magekube off", diag)
		t.Logf("switched off in %s", time.Since(start).Round(time.Second))
		run := mage.trigger(t, "etl")
		if status := mage.waitRun(t, run, diag); status != "completed" {
			t.Fatalf("pipeline run etl through Mage's own executor: %s, want completed\n%s", status, diag())
		}
		if n := len(magekubeRuns(t, shared, "etl")); n != before {
			t.Errorf("%d magekube runs for etl after the rollback, want %d: the agent took a run", n, before)
		}
		// Mage's own executor names its Jobs <cluster>-data-prep-block-<id>
		// and deletes them when they end; the Job controller's events stay.
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=SuccessfulCreate"})
		if err != nil {
			t.Fatal(err)
		}
		mageJobs := 0
		for _, e := range evs.Items {
			if strings.Contains(e.InvolvedObject.Name, "-data-prep-block-") {
				mageJobs++
			}
		}
		if mageJobs < 3 {
			t.Errorf("%d pods of Mage's own block Jobs created, want 3 (one per block)", mageJobs)
		}

		start = time.Now()
		env.Kubectl(t, ns, "", "apply", "-k", overlay)
		rollout(t, ns, "mage", diag)
		relogin(t, mage, "Mage's API after switching magekube on", diag)
		t.Logf("switched on in %s", time.Since(start).Round(time.Second))
		checkTokenSplit(t, ns, "app.kubernetes.io/name=mage", true)
		run = mage.trigger(t, "etl")
		if status := mage.waitRun(t, run, diag); status != "completed" {
			t.Fatalf("pipeline run etl after switching magekube on: %s, want completed\n%s", status, diag())
		}
		if n := len(magekubeRuns(t, shared, "etl")); n != before+3 {
			t.Errorf("%d magekube runs for etl, want %d: one Job per block once switched on", n, before+3)
		}
	})

	waitFor(t, time.Minute, "a RunSucceeded event on a Job", func() bool {
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=RunSucceeded"})
		return err == nil && len(evs.Items) > 0
	}, func() string { return "" })
}

// checkTokenSplit: only the agent container of the Mage pod (selector)
// mounts a Kubernetes token; podLevel: the pod itself turns automounting
// off (Mage's Helm chart cannot: its service account does).
func checkTokenSplit(t *testing.T, ns, selector string, podLevel bool) {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
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
	if podLevel && (pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken) {
		t.Error("pod automounts a service account token")
	}
}

type block struct{ name, kind, body string }

// writePipeline writes a Python pipeline of blocks run in a chain by
// Mage's executor (k8s: through the agent), in Mage's own file layout.
func writePipeline(t *testing.T, project, pipeline, executor string, blocks []block) {
	t.Helper()
	writeDAG(t, project, pipeline, executor, blocks, nil)
}

// writeDAG writes a pipeline whose blocks' upstream blocks are given
// (a block absent from upstream follows the block before it).
func writeDAG(t *testing.T, project, pipeline, executor string, blocks []block, upstream map[string][]string) {
	t.Helper()
	var meta strings.Builder
	fmt.Fprintf(&meta, "uuid: %[1]s\nname: %[1]s\ntype: python\nexecutor_type: %[2]s\nblocks:\n", pipeline, executor)
	files := map[string]string{}
	ups, downs := map[string][]string{}, map[string][]string{}
	for i, b := range blocks {
		up, ok := upstream[b.name]
		if !ok && i > 0 {
			up = []string{blocks[i-1].name}
		}
		ups[b.name] = up
		for _, u := range ups[b.name] {
			downs[u] = append(downs[u], b.name)
		}
	}
	for _, b := range blocks {
		fmt.Fprintf(&meta, "- {uuid: %[1]s, name: %[1]s, type: %[2]s, language: python, executor_type: %[5]s, upstream_blocks: [%[3]s], downstream_blocks: [%[4]s]}\n",
			b.name, b.kind, strings.Join(ups[b.name], ", "), strings.Join(downs[b.name], ", "), executor)
		args := "*args, **kwargs"
		if len(ups[b.name]) == 1 {
			args = "data, *args, **kwargs"
		}
		files[filepath.Join(b.kind+"s", b.name+".py")] = fmt.Sprintf(`if '%[1]s' not in globals():
    from mage_ai.data_preparation.decorators import %[1]s


@%[1]s
def %[2]s(%[3]s):
    %[4]s
`, b.kind, b.name, args, b.body)
	}
	files[filepath.Join("pipelines", pipeline, "metadata.yaml")] = meta.String()
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

// magekubeRun is one run of the agent, found by its request.
type magekubeRun struct {
	Status protocol.Status
	// From the request: Mage's pipeline run, block run and block.
	PipelineRun, BlockRun int
	Block                 string
}

// magekubeRuns lists the agent's runs of a pipeline, by their requests.
func magekubeRuns(t *testing.T, shared, pipeline string) []magekubeRun {
	t.Helper()
	layout := protocol.Layout{Root: filepath.Join(shared, ".magekube")}
	entries, _ := os.ReadDir(layout.Runs())
	var out []magekubeRun
	for _, e := range entries {
		var req struct {
			Pipeline    string `json:"pipeline_uuid"`
			PipelineRun int    `json:"pipeline_run_id"`
			BlockRun    int    `json:"block_run_id"`
			Block       string `json:"block_uuid"`
		}
		data, err := os.ReadFile(layout.RunFile(e.Name(), protocol.RequestFile))
		if err != nil || json.Unmarshal(data, &req) != nil || req.Pipeline != pipeline {
			continue
		}
		r := magekubeRun{PipelineRun: req.PipelineRun, BlockRun: req.BlockRun, Block: req.Block}
		if data, err := os.ReadFile(layout.RunFile(e.Name(), protocol.StatusFile)); err == nil && json.Unmarshal(data, &r.Status) == nil {
			out = append(out, r)
		}
	}
	return out
}

// runLogs joins the runs' logs (each Job's output, teed by the runner).
func runLogs(t *testing.T, shared string, runs []magekubeRun) string {
	t.Helper()
	layout := protocol.Layout{Root: filepath.Join(shared, ".magekube")}
	var b strings.Builder
	for _, r := range runs {
		data, _ := os.ReadFile(layout.RunFile(r.Status.ID, protocol.LogFile))
		b.Write(data)
	}
	return b.String()
}

// waitSpans waits for trace id in the stack's Jaeger to hold at least n
// spans (the export is asynchronous).
func waitSpans(t *testing.T, ns, id string, n int) {
	t.Helper()
	var spans int
	waitFor(t, time.Minute, "trace "+id+" in Jaeger", func() bool {
		raw, err := env.Client.CoreV1().RESTClient().Get().
			AbsPath("/api/v1/namespaces", ns, "services", "jaeger:16686", "proxy", "api", "traces", id).DoRaw(t.Context())
		if err != nil {
			return false
		}
		spans = strings.Count(string(raw), `"operationName"`)
		return spans >= n
	}, func() string { return fmt.Sprintf("%d spans, want %d", spans, n) })
}

// mageAPI is Mage's REST API, reached through the API server's service
// proxy, logged in as Mage's default owner.
type mageAPI struct {
	ns     string
	name   string // Mage's Service, its pods' app.kubernetes.io/name and its container
	shared string // the namespace's project volume: default_repo and .magekube
	cookie string

	schedules map[string][2]string   // pipeline: its API trigger's schedule id and token
	pipelines map[int]string         // Mage's pipeline run id: its pipeline
	watches   map[string]*queueWatch // pipeline: what unstall saw last
}

// apiKey is the client id of Mage's own web app, which its API requires.
const apiKey = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"

func (m *mageAPI) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	path, query, _ := strings.Cut(path, "?")
	req := env.Client.CoreV1().RESTClient().Verb(method).
		AbsPath(append([]string{"/api/v1/namespaces", m.ns, "services", m.name + ":6789", "proxy", "api"}, strings.Split(path, "/")...)...).
		SetHeader("X-API-KEY", apiKey).SetHeader("Content-Type", "application/json")
	if values, err := url.ParseQuery(query); err == nil {
		for k, v := range values {
			req = req.Param(k, v[0])
		}
	}
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

// login opens a session as Mage's default admin and keeps its token.
func (m *mageAPI) login(ctx context.Context) error {
	// A new session, without the last one's token: Mage lets only
	// anonymous (public-scope) callers create a session, so a login that
	// sent a valid token would be refused forever.
	m.cookie = ""
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

// trigger runs pipeline once through its API trigger (made on first use),
// as a user's `curl` to the trigger's URL does; it returns Mage's run id.
func (m *mageAPI) trigger(t *testing.T, pipeline string) int {
	t.Helper()
	schedule, ok := m.schedules[pipeline]
	if !ok {
		out, err := m.call(t.Context(), "POST", "pipelines/"+pipeline+"/pipeline_schedules",
			map[string]any{"pipeline_schedule": map[string]string{"name": "e2e-" + pipeline, "schedule_type": "api", "status": "active"}})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := out["pipeline_schedule"].(map[string]any)
		schedule = [2]string{fmt.Sprint(s["id"]), fmt.Sprint(s["token"])}
		if m.schedules == nil {
			m.schedules = map[string][2]string{}
		}
		m.schedules[pipeline] = schedule
	}
	out, err := m.call(t.Context(), "POST", "pipeline_schedules/"+schedule[0]+"/pipeline_runs/"+schedule[1], map[string]any{"pipeline_run": map[string]any{"variables": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := out["pipeline_run"].(map[string]any)
	n, ok := run["id"].(float64)
	if !ok {
		t.Fatalf("no pipeline run id in %v", out)
	}
	if m.pipelines == nil {
		m.pipelines = map[int]string{}
	}
	m.pipelines[int(n)] = pipeline
	return int(n)
}

// Mage's ProcessQueue (mage-ai 0.9.80, unmodified) can strand a block
// run: its scheduler's clean-up drops a queued job's entry while a worker
// is taking it (the worker's KeyError), and the re-enqueue that follows
// starts a worker pool that finds the queue empty before the job reaches
// the queue's pipe and exits. The job then sits in the queue with no pool
// until Mage's next enqueue starts one; in a busy Mage the next run's
// blocks do. Here nothing else runs, so unstall does what that traffic
// does: when Mage has sent no new request for a pipeline for stallAfter
// while every run the agent had from it has ended, it runs a local no-op
// pipeline, whose enqueue starts the pool, which runs the stranded job.
// Mage's own queue lines are logged. The tests still check every outcome:
// a stranded run that is not resumed still fails them.
// MAGEKUBE_E2E_STALL_AFTER (a Go duration; 0 nudges on every idle poll)
// tries the nudge itself.
var stallAfter = func() time.Duration {
	v := os.Getenv("MAGEKUBE_E2E_STALL_AFTER")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("MAGEKUBE_E2E_STALL_AFTER=%q: want a Go duration such as 30s or 0s: %v", v, err))
	}
	return d
}()

// queueWatch is what unstall last saw of a pipeline's runs.
type queueWatch struct {
	seen          string // ended/all of the agent's runs
	since, nudged time.Time
}

// unstall nudges Mage's queue when pipeline's runs have stalled (above);
// the test's wait loops call it on each poll.
func (m *mageAPI) unstall(t *testing.T, pipeline string) {
	t.Helper()
	runs := magekubeRuns(t, m.shared, pipeline)
	ended := 0
	for _, r := range runs {
		if r.Status.Phase.Terminal() {
			ended++
		}
	}
	if m.watches == nil {
		m.watches = map[string]*queueWatch{}
	}
	w, now := m.watches[pipeline], time.Now()
	if w == nil {
		w = &queueWatch{}
		m.watches[pipeline] = w
	}
	if seen := fmt.Sprintf("%d/%d", ended, len(runs)); seen != w.seen || ended < len(runs) {
		w.seen, w.since = seen, now
		return
	}
	if now.Sub(w.since) < stallAfter || now.Sub(w.nudged) < stallAfter {
		return
	}
	w.nudged = now
	t.Logf("Mage sent no request for pipeline %s in %s, its %d run(s) at the agent ended: nudging Mage's process queue with a local no-op pipeline. Mage's queue lines:\n%s",
		pipeline, now.Sub(w.since).Round(time.Second), len(runs), queueLines(m))
	if _, ok := m.schedules[nudgePipeline]; !ok {
		writePipeline(t, filepath.Join(m.shared, "default_repo"), nudgePipeline, "local_python", []block{{"nudge", "data_loader", "print('nudge')"}})
	}
	m.trigger(t, nudgePipeline)
}

// nudgePipeline is unstall's no-op pipeline, run in the Mage server.
const nudgePipeline = "queue_nudge"

// waitRun waits up to 5 minutes for Mage's pipeline run to end, nudging
// a stalled queue (unstall), and returns its status.
func (m *mageAPI) waitRun(t *testing.T, run int, diag func() string) string {
	t.Helper()
	return m.waitRunWithin(t, run, 5*time.Minute, diag)
}

func (m *mageAPI) waitRunWithin(t *testing.T, run int, within time.Duration, diag func() string) string {
	t.Helper()
	var status string
	deadline := time.Now().Add(within)
	for { // every second: each poll is a line in Mage's log
		status = m.runStatus(t, run)
		if status == "completed" || status == "failed" || status == "cancelled" {
			return status
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for Mage's pipeline run %d to end (%s)\n%s", run, status, diag())
		}
		m.unstall(t, m.pipelines[run])
		time.Sleep(time.Second)
	}
}

// mageBlockRun is what Mage's API says of a block run; Detail is the rest
// of it (metrics, error details) as JSON.
type mageBlockRun struct {
	Block, Status, Detail string
}

func (m *mageAPI) blockRuns(t *testing.T, run int) []mageBlockRun {
	t.Helper()
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("block_runs?pipeline_run_id=%d", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := out["block_runs"].([]any)
	var runs []mageBlockRun
	for _, item := range list {
		b, _ := item.(map[string]any)
		detail, _ := json.Marshal(b)
		runs = append(runs, mageBlockRun{Block: fmt.Sprint(b["block_uuid"]), Status: fmt.Sprint(b["status"]), Detail: string(detail)})
	}
	if len(runs) == 0 {
		t.Fatalf("Mage lists no block runs for pipeline run %d: %v", run, out)
	}
	return runs
}

// runLogs is what Mage's logs API (what its UI shows) has of a pipeline
// run, as JSON text.
func (m *mageAPI) runLogs(t *testing.T, pipeline string, run int) string {
	t.Helper()
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("pipelines/%s/logs?pipeline_run_id[]=%d", pipeline, run), nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := json.Marshal(out)
	return string(logs)
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

// mageLog is the tail of the Mage container's log (the pod selected by
// selector, its container), for a failing test: without the API's own
// access lines (the test's polling).
func mageLog(t *testing.T, ns, selector, container string) string {
	kept, err := mageLogLines(ns, selector, container, func(line string) bool {
		return !strings.Contains(line, "tornado.access") && !strings.Contains(line, "[api.views]")
	})
	if len(kept) > 80 {
		kept = kept[len(kept)-80:]
	}
	return fmt.Sprintf("mage log (%v):\n%s\n", err, strings.Join(kept, "\n"))
}

// queueLines are the lines of the Mage container's log about its process
// queue.
func queueLines(m *mageAPI) string {
	kept, err := mageLogLines(m.ns, "app.kubernetes.io/name="+m.name, m.name, func(line string) bool {
		for _, s := range []string{"ProcessQueue", "Worker pool size", "Run worker for job", "KeyError"} {
			if strings.Contains(line, s) {
				return true
			}
		}
		return false
	})
	return fmt.Sprintf("(%v)\n%s", err, strings.Join(kept, "\n"))
}

// mageLogLines are the lines keep keeps of the last 2,000 of the Mage
// container's log.
func mageLogLines(ns, selector, container string, keep func(string) bool) ([]string, error) {
	pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(pods.Items) == 0 {
		return nil, err
	}
	tail := int64(2000)
	logs, err := env.Client.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: container, TailLines: &tail}).DoRaw(context.Background())
	var kept []string
	for _, line := range strings.Split(string(logs), "\n") {
		if keep(line) {
			kept = append(kept, line)
		}
	}
	return kept, err
}

// rollout waits until Deployment name runs its newest template alone:
// every pod of an older one gone.
func rollout(t *testing.T, ns, name string, diag func() string) {
	t.Helper()
	waitFor(t, 5*time.Minute, "Deployment "+name+" to roll out", func() bool {
		d, err := env.Client.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration < d.Generation {
			return false
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.UpdatedReplicas != want || d.Status.Replicas != want || d.Status.AvailableReplicas != want {
			return false
		}
		pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		return err == nil && len(pods.Items) == int(want)
	}, diag)
}

// relogin logs in again to a new Mage pod, naming the last error.
func relogin(t *testing.T, m *mageAPI, what string, diag func() string) {
	t.Helper()
	var last error
	waitFor(t, 5*time.Minute, what, func() bool {
		last = m.login(t.Context())
		return last == nil
	}, func() string { return fmt.Sprintf("the last login: %v\n%s", last, diag()) })
}

// chainGaps: for runs of a chain, each run's claim after the previous
// run's end, in claim order.
func chainGaps(runs []magekubeRun) string {
	sorted := append([]magekubeRun(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Status.CreatedAt.Before(sorted[j].Status.CreatedAt) })
	var gaps []string
	for i := 1; i < len(sorted); i++ {
		prev := sorted[i-1].Status.FinishedAt
		if prev == nil {
			continue
		}
		gaps = append(gaps, sorted[i].Status.CreatedAt.Sub(*prev).Round(10*time.Millisecond).String())
	}
	return strings.Join(gaps, ", ")
}

// stack is make demo's stack (framework.KindStack) in a namespace of its
// own, applied with `kubectl apply -k` as a user does, Mage's API logged in.
type stack struct {
	ns, shared, repo, overlay string
	mage                      *mageAPI
	diag                      func() string
}

func startStack(t *testing.T, prefix string) *stack {
	t.Helper()
	return startStackWith(t, prefix, false)
}

// startStackWith starts the stack with Mage's own executor instead
// (rollback: the rollback component, as docs/operations switches it)
// and the kustomize patches given (entries of the overlay's patches).
func startStackWith(t *testing.T, prefix string, rollback bool, patches ...string) *stack {
	t.Helper()
	s := &stack{ns: env.Namespace(t, prefix), overlay: t.TempDir()}
	s.shared = projectVolume(t, s.ns)
	var err error
	if s.repo, err = filepath.Abs("../.."); err != nil {
		t.Fatal(err)
	}
	if err := framework.KindStack(s.overlay, s.repo, s.ns, s.shared, env); err != nil {
		t.Fatal(err)
	}
	if len(patches) > 0 {
		f, err := os.OpenFile(filepath.Join(s.overlay, "kustomization.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString("\n" + strings.Join(patches, "\n") + "\n")
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	dir := s.overlay
	if rollback {
		dir = t.TempDir()
		component, _ := filepath.Rel(dir, filepath.Join(s.repo, "deploy/manifests/rollback"))
		base, _ := filepath.Rel(dir, s.overlay)
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources: [%s]\ncomponents: [%s]\n", s.ns, base, component)
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env.Kubectl(t, s.ns, "", "apply", "-k", dir)
	s.mage = &mageAPI{ns: s.ns, name: "mage", shared: s.shared}
	s.diag = func() string {
		return podDiagnostics(t, s.ns) + mageLog(t, s.ns, "app.kubernetes.io/name=mage", "mage")
	}
	waitFor(t, 5*time.Minute, "Mage's API to answer a login", func() bool { return s.mage.login(t.Context()) == nil }, s.diag)
	return s
}
