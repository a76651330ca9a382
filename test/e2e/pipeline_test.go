//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
)

// TestPipelineWallTime is `make bench`'s pipeline section, not part of
// the e2e tier: it runs when MAGEKUBE_BENCH_PIPELINE_OUT names the file
// for its results. Two real Mage stacks on kind, the same Mage image and
// the same project: one through magekube (early scheduling on, then off)
// and one through Mage's own Kubernetes executor (the rollback
// component). Each runs a 10-block chain and a 1 → 6 → 1 fan-out,
// MAGEKUBE_BENCH_PIPELINE_RUNS times each (default 2), one pipeline run
// at a time, every block a real `mage run` in its Job. The wall time is
// Mage's own (a pipeline run's started_at → completed_at); a gap is the
// cluster's: a block's Job created after its upstream blocks' Jobs'
// containers ended. With MAGEKUBE_E2E_AUDIT=1 (the bench sets it) each
// pipeline run's API requests are counted in the API server's audit log.
// Then MAGEKUBE_BENCH_PIPELINE_LOAD runs of the chain (default 50) go
// through magekube at once, and each block run must execute exactly once
// (pipelineLoad).
func TestPipelineWallTime(t *testing.T) {
	out := os.Getenv("MAGEKUBE_BENCH_PIPELINE_OUT")
	if out == "" {
		t.Skip("a bench: MAGEKUBE_BENCH_PIPELINE_OUT names its results file (hack/bench.sh sets it)")
	}
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	runs := envCount(t, "MAGEKUBE_BENCH_PIPELINE_RUNS", 2, 1)
	loadRuns := envCount(t, "MAGEKUBE_BENCH_PIPELINE_LOAD", 50, 0) // 0: no load run

	chain := make([]block, 10)
	for i := range chain {
		kind := "transformer"
		if i == 0 {
			kind = "data_loader"
		}
		chain[i] = block{fmt.Sprintf("step%d", i), kind, fmt.Sprintf("print('step %d')", i)}
	}
	fan := []block{{"seed", "data_loader", "print('seed')"}}
	upstream := map[string][]string{}
	var middle []string
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("part%d", i)
		fan = append(fan, block{name, "transformer", fmt.Sprintf("print('part %d')", i)})
		upstream[name] = []string{"seed"}
		middle = append(middle, name)
	}
	fan = append(fan, block{"merge", "transformer", "print('merge')"})
	upstream["merge"] = middle

	type side struct{ name, ns string }
	deploy := func(name string, rollback bool) (*mageAPI, side) {
		st := startStackWith(t, "bench-"+name, rollback)
		return st.mage, side{name, st.ns}
	}
	mk, mkSide := deploy("magekube", false)
	own, ownSide := deploy("mage", true)
	for _, m := range []*mageAPI{mk, own} {
		diag := func() string { return podDiagnostics(t, m.ns) }
		waitFor(t, 8*time.Minute, "Mage's API in "+m.ns, func() bool { return m.login(t.Context()) == nil }, diag)
		project := filepath.Join(m.shared, "default_repo")
		writePipeline(t, project, "chain10", "k8s", chain)
		writeDAG(t, project, "fanout", "k8s", fan, upstream)
	}

	results := map[string]any{"runs_each": runs}
	var rows []string
	measure := func(label string, m *mageAPI, s side) {
		for _, pipeline := range []string{"chain10", "fanout"} {
			var walls []float64
			for i := 0; i < runs; i++ {
				diag := func() string {
					return podDiagnostics(t, s.ns) + mageLog(t, s.ns, "app.kubernetes.io/name=mage", "mage")
				}
				jobsBefore := jobsCreated(t, s.ns)
				watch := watchBlocks(t, s.ns)
				t0 := time.Now()
				run := m.trigger(t, pipeline)
				status := m.waitRunWithin(t, run, 20*time.Minute, diag)
				watch.stop()
				if status != "completed" {
					t.Fatalf("%s: pipeline run %s %d: %s\n%s", label, pipeline, run, status, diag())
				}
				wall, gaps := m.pipelineTimes(t, run, watch, map[string]map[string][]string{"fanout": upstream}[pipeline])
				jobs := jobsCreated(t, s.ns) - jobsBefore
				walls = append(walls, wall.Seconds())
				var sum time.Duration
				for _, g := range gaps {
					sum += g
				}
				requests := "n/a"
				key := label + "/" + pipeline
				if env.AuditLog != "" {
					n, by := stackRequests(t, s.ns, t0, time.Now())
					requests = fmt.Sprintf("%d (%s)", n, cluster.PerRun(by, 1))
					all, _ := results["requests/"+key].([]float64)
					results["requests/"+key] = append(all, float64(n))
				}
				row := fmt.Sprintf("| %s | %s | %d | %.1f | %.1f | %.2f | %d | %s |", label, pipeline, run, wall.Seconds(), sum.Seconds(), maxDuration(gaps).Seconds(), jobs, requests)
				rows = append(rows, row)
				t.Log(row)
				all, _ := results["gaps_ms/"+key].([]float64)
				for _, g := range gaps {
					all = append(all, float64(g.Milliseconds()))
				}
				results["gaps_ms/"+key] = all
				if label != "mage" { // the agent's own times, to the millisecond
					agent, _ := results["agent_gaps_ms/"+key].([]float64)
					for _, g := range agentGaps(t, m.shared, pipeline, run, map[string]map[string][]string{"fanout": upstream}[pipeline]) {
						agent = append(agent, float64(g.Milliseconds()))
					}
					results["agent_gaps_ms/"+key] = agent
				}
			}
			results["wall_s/"+label+"/"+pipeline] = walls
		}
	}
	measure("magekube", mk, mkSide)
	if loadRuns > 0 {
		pipelineLoad(t, mk, mkSide.ns, "chain10", len(chain), loadRuns, results)
	}
	measure("mage", own, ownSide)
	// The switch off: Mage's scheduler back to its 10 s tick.
	env.Kubectl(t, mkSide.ns, "", "set", "env", "deployment/mage", "-c", "mage", "MAGEKUBE_EARLY_SCHEDULE=0")
	rollout(t, mkSide.ns, "mage", func() string { return podDiagnostics(t, mkSide.ns) })
	relogin(t, mk, "Mage's API with early scheduling off", func() string { return podDiagnostics(t, mkSide.ns) })
	measure("magekube-off", mk, mkSide)

	t.Logf("\n| executor | pipeline | Mage's run | wall (s) | gaps between dependent blocks, sum (s) | largest gap (s) | Jobs created | API requests |\n|---|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	results["rows"] = rows
	data, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// envCount is the number the environment variable name gives (def when
// unset), at least least.
func envCount(t *testing.T, name string, def, least int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		t.Fatalf("%s=%q: want a number of at least %d", name, v, least)
	}
	return n
}

// pipelineLoad triggers n runs of pipeline (blocks blocks in a chain)
// through magekube at once, waits for all, and checks each block run
// executed exactly once: Mage's block runs (its API) all completed, one
// agent run per block run (attempt 1, succeeded), one Job per agent run
// and one pod per Job (the Job controller's events). Results: the wall
// times, the agent's gaps and "exactly_once".
func pipelineLoad(t *testing.T, m *mageAPI, ns, pipeline string, blocks, n int, results map[string]any) {
	t.Helper()
	diag := func() string { return podDiagnostics(t, ns) + mageLog(t, ns, "app.kubernetes.io/name=mage", "mage") }
	podsBefore := podsCreated(t, ns)
	t0 := time.Now()
	runs := make([]int, n)
	for i := range runs {
		runs[i] = m.trigger(t, pipeline)
	}
	t.Logf("load: %d runs of %s triggered in %s", n, pipeline, time.Since(t0).Round(time.Millisecond))
	var walls []float64
	var first, last time.Time
	for _, run := range runs {
		if status := m.waitRunWithin(t, run, 60*time.Minute, diag); status != "completed" {
			t.Errorf("load: pipeline run %d: %s", run, status)
		}
	}
	took := time.Since(t0)
	var gaps []float64
	var problems []string
	mine := map[int]bool{}
	for _, run := range runs {
		mine[run] = true
		started, completed := m.runTimes(t, run)
		walls = append(walls, completed.Sub(started).Seconds())
		if first.IsZero() || started.Before(first) {
			first = started
		}
		if completed.After(last) {
			last = completed
		}
		brs := m.blockRuns(t, run)
		done := 0
		for _, b := range brs {
			if b.Status == "completed" {
				done++
			}
		}
		if len(brs) != blocks || done != blocks {
			problems = append(problems, fmt.Sprintf("pipeline run %d: Mage has %d block runs, %d completed, want %d", run, len(brs), done, blocks))
		}
		for _, g := range agentGaps(t, m.shared, pipeline, run, nil) {
			gaps = append(gaps, float64(g.Milliseconds()))
		}
	}
	waitFor(t, 2*time.Minute, "every run of "+pipeline+" final and no Job of it running", func() bool {
		return settled(t, ns, m.shared, pipeline)
	}, diag)
	perBlockRun := map[int]int{}
	jobs, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobsOf := map[string][]string{}
	for _, j := range jobs.Items {
		jobsOf[j.Labels[jobspec.LabelRun]] = append(jobsOf[j.Labels[jobspec.LabelRun]], j.Name)
	}
	pods := podsCreated(t, ns)
	for _, r := range magekubeRuns(t, m.shared, pipeline) {
		if !mine[r.PipelineRun] {
			continue
		}
		perBlockRun[r.BlockRun]++
		if r.Status.Phase != protocol.PhaseSucceeded || r.Status.Attempts > 1 {
			problems = append(problems, fmt.Sprintf("run %s: %s %s, %d attempts", r.Status.ID, r.Status.Phase, r.Status.Reason, r.Status.Attempts))
		}
		names := jobsOf[r.Status.ID]
		if len(names) != 1 {
			problems = append(problems, fmt.Sprintf("run %s: Jobs %v, want one", r.Status.ID, names))
			continue
		}
		if got := pods[names[0]] - podsBefore[names[0]]; got != 1 {
			problems = append(problems, fmt.Sprintf("Job %s: %d pods created, want 1", names[0], got))
		}
	}
	if len(perBlockRun) != n*blocks {
		problems = append(problems, fmt.Sprintf("agent runs for %d block runs, want %d", len(perBlockRun), n*blocks))
	}
	for id, c := range perBlockRun {
		if c != 1 {
			problems = append(problems, fmt.Sprintf("block run %d: %d agent runs, want 1", id, c))
		}
	}
	for _, p := range problems {
		t.Error("load: " + p)
	}
	sort.Float64s(walls)
	sort.Float64s(gaps)
	results["load_runs"] = n
	results["load_exactly_once"] = len(problems) == 0
	results["load_wall_s"] = walls
	results["load_span_s"] = last.Sub(first).Seconds()
	results["load_took_s"] = took.Seconds()
	results["load_agent_gaps_ms"] = gaps
	t.Logf("load: %d runs of %s (%d block runs): every block run once: %v; all done %.0f s after the first trigger (Mage's first start → last completion %.0f s); a run's wall time p50 %.1f s, max %.1f s; gaps p50 %.0f ms, p99 %.0f ms",
		n, pipeline, n*blocks, len(problems) == 0, took.Seconds(), last.Sub(first).Seconds(), quantile(walls, 0.5), quantile(walls, 1), quantile(gaps, 0.5), quantile(gaps, 0.99))
}

// quantile of sorted xs (nearest rank), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// stackRequests counts the API requests a stack's identities made between
// from and to (the API server's audit log: its service accounts in ns;
// the Mage container of the magekube stack has no token, so there that
// is the agent alone), by verb and resource.
func stackRequests(t *testing.T, ns string, from, to time.Time) (int, map[string]int) {
	t.Helper()
	user := "system:serviceaccount:" + ns + ":"
	n, by, err := cluster.CountRequests(env.AuditLog, from, to, func(ev cluster.AuditEvent) bool { return strings.HasPrefix(ev.User.Username, user) })
	if err != nil {
		t.Fatal(err)
	}
	return n, by
}

// jobsCreated counts the Jobs whose pods the Job controller created in
// ns (podsCreated).
func jobsCreated(t *testing.T, ns string) int {
	t.Helper()
	return len(podsCreated(t, ns))
}

// blockWatch records, while a pipeline runs, when each Job was created
// and when its pod's container ended (both executors name a block run's
// Job <cluster>-data-prep-block-<block run id>, and Mage's own deletes it
// once it ends: a watch sees it before that).
type blockWatch struct {
	mu      sync.Mutex
	created map[string]time.Time // Job name
	ended   map[string]time.Time // Job name: its pod's first container's end
	stop    func()
}

func watchBlocks(t *testing.T, ns string) *blockWatch {
	t.Helper()
	w := &blockWatch{created: map[string]time.Time{}, ended: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns))
	jobs, pods := factory.Batch().V1().Jobs().Informer(), factory.Core().V1().Pods().Informer()
	onJob := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok {
			w.mu.Lock()
			w.created[j.Name] = j.CreationTimestamp.Time
			w.mu.Unlock()
		}
	}
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Labels["job-name"] == "" {
			return
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Terminated != nil && c.Name != "magekube-runner" {
				w.mu.Lock()
				w.ended[p.Labels["job-name"]] = c.State.Terminated.FinishedAt.Time
				w.mu.Unlock()
			}
		}
	}
	_, _ = jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob})
	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) }})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	w.stop = func() {
		time.Sleep(2 * time.Second) // the last pod's final update
		cancel()
		factory.Shutdown()
	}
	return w
}

// pipelineTimes: a completed pipeline run's wall time (Mage's own
// started_at → completed_at) and, for each block run with upstream block
// runs, its Job's creation after the last of their Jobs' containers ended
// (upstream nil: a chain, in the order the Jobs were created). Mage's
// block-run completed_at cannot serve: `mage run` in the Job writes it,
// and the executor writes it again when it returns.
func (m *mageAPI) pipelineTimes(t *testing.T, run int, w *blockWatch, upstream map[string][]string) (time.Duration, []time.Duration) {
	t.Helper()
	started, completed := m.runTimes(t, run)
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("block_runs?pipeline_run_id=%d", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	type times struct{ created, ended time.Time }
	blocks := map[string]times{}
	list, _ := out["block_runs"].([]any)
	for _, item := range list {
		b, _ := item.(map[string]any)
		id := fmt.Sprint(b["id"])
		if f, ok := b["id"].(float64); ok {
			id = strconv.Itoa(int(f))
		}
		for job := range w.created {
			if strings.HasSuffix(job, "-block-"+id) || strings.Contains(job, "-block-"+id+"-") {
				blocks[fmt.Sprint(b["block_uuid"])] = times{w.created[job], w.ended[job]}
			}
		}
	}
	if len(blocks) != len(list) {
		t.Fatalf("Jobs seen for %d of the %d block runs of pipeline run %d: %v", len(blocks), len(list), run, w.created)
	}
	if upstream == nil {
		upstream = chainOf(blocks, func(a, b times) bool { return a.created.Before(b.created) })
	}
	var gaps []time.Duration
	for name, ups := range upstream {
		var last time.Time
		for _, u := range ups {
			if blocks[u].ended.IsZero() {
				t.Fatalf("no end seen for the Job of block %s", u)
			}
			if blocks[u].ended.After(last) {
				last = blocks[u].ended
			}
		}
		gaps = append(gaps, blocks[name].created.Sub(last))
	}
	return completed.Sub(started), gaps
}

// agentGaps: for one pipeline run through magekube, each block run's
// claim by the agent after the last of its upstream block runs' Jobs
// ended as the agent saw it (status.json's created_at and finished_at,
// which keep milliseconds; the cluster's timestamps keep seconds).
func agentGaps(t *testing.T, shared, pipeline string, run int, upstream map[string][]string) []time.Duration {
	t.Helper()
	byBlock := map[string]protocol.Status{}
	for _, r := range magekubeRuns(t, shared, pipeline) {
		if r.PipelineRun == run {
			byBlock[r.Block] = r.Status
		}
	}
	if upstream == nil {
		upstream = chainOf(byBlock, func(a, b protocol.Status) bool { return a.CreatedAt.Before(b.CreatedAt) })
	}
	var gaps []time.Duration
	for name, ups := range upstream {
		var last time.Time
		for _, u := range ups {
			if f := byBlock[u].FinishedAt; f != nil && f.After(last) {
				last = *f
			}
		}
		if !last.IsZero() {
			gaps = append(gaps, byBlock[name].CreatedAt.Sub(last))
		}
	}
	return gaps
}

// chainOf: the blocks of a chain, each one's upstream the block before it
// in the order before gives.
func chainOf[T any](blocks map[string]T, before func(a, b T) bool) map[string][]string {
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return before(blocks[names[i]], blocks[names[j]]) })
	upstream := map[string][]string{}
	for i := 1; i < len(names); i++ {
		upstream[names[i]] = []string{names[i-1]}
	}
	return upstream
}

// runTimes is a pipeline run's started_at and completed_at, Mage's own.
func (m *mageAPI) runTimes(t *testing.T, run int) (started, completed time.Time) {
	t.Helper()
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("pipeline_runs/%d", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := out["pipeline_run"].(map[string]any)
	return mageTime(t, r["started_at"]), mageTime(t, r["completed_at"])
}

// mageTime parses a timestamp of Mage's API.
func mageTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02T15:04:05.999999-07:00", "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999"} {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts
		}
	}
	t.Fatalf("Mage's timestamp %q: no known layout", s)
	return time.Time{}
}

func maxDuration(ds []time.Duration) time.Duration {
	m := time.Duration(math.MinInt64)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
