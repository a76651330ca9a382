// Command bench measures the agent on the offline control plane with kwok
// nodes (real API server, Job controller and scheduler; pods run no
// container): dispatch latency, completion-notice latency against a
// tracker that polls every 5 s as Mage's executor does, throughput, and
// the agent's memory and restart time with many Jobs tracked. It prints a
// markdown table and, as its last line, one JSON object. `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
)

// burstRounds is how many bursts of 100 (and bare-client floors) the
// dispatch figures pool.
const burstRounds = 3

type bench struct {
	client  kubernetes.Interface
	ns      string
	pod     *corev1.Pod
	layout  protocol.Layout
	project string
	kubecfg string

	mu       sync.Mutex
	jobSeen  map[string]time.Time // run id → Job first seen by the bench's watch
	jobDone  map[string]bool      // run id → the Job has completed
	podOf    map[string]string    // run id → pod name
	keyOf    map[string]string    // run id → the run's key (its Job's UID)
	running  map[string]chan struct{}
	autoExit bool
	n        int
	creates  createTimes
	// profileDir receives profiles (-profile); empty: none.
	profileDir string
	// agentClient is the agent's client (production settings, the bench's
	// rate limit, create timing).
	agentClient kubernetes.Interface
	stop        func()
}

// createTimes records, per run, when the agent sent its Job create and
// when the API server answered: request → sent is the agent's share of
// the dispatch latency, sent → answered the API server's.
type createTimes struct {
	mu             sync.Mutex
	sent, answered map[string]time.Time
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *createTimes) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/jobs") || r.GetBody == nil {
			return next.RoundTrip(r)
		}
		id := ""
		if body, err := r.GetBody(); err == nil {
			data, _ := io.ReadAll(body)
			if obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil); err == nil {
				if job, ok := obj.(*batchv1.Job); ok {
					id = job.Labels[jobspec.LabelRun]
				}
			}
		}
		sent := time.Now()
		resp, err := next.RoundTrip(r)
		answered := time.Now()
		c.mu.Lock()
		if c.sent == nil {
			c.sent, c.answered = map[string]time.Time{}, map[string]time.Time{}
		}
		c.sent[id], c.answered[id] = sent, answered
		c.mu.Unlock()
		return resp, err
	})
}

// split returns, for runs requested at the given times, the agent's share
// (request → create sent) and the API server's (sent → answered).
func (c *createTimes) split(ids []string, at []time.Time) (agent, api []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if s, ok := c.sent[id]; ok {
			agent = append(agent, s.Sub(at[i]))
			api = append(api, c.answered[id].Sub(s))
		}
	}
	return agent, api
}

func main() {
	binDir := flag.String("bin-dir", os.Getenv("MAGEKUBE_BIN_DIR"), "directory with the cluster binaries and kwok (hack/build-bins.sh)")
	throughputN := flag.String("throughput", "1000,5000", "runs requested at once for the throughput figures, comma-separated; the JSON's throughput_runs_per_s is the last")
	only := flag.String("only", "", "run only these sections, comma-separated: dispatch, notice, throughput, scale, runner (default: all; the JSON line then lacks the others)")
	profileDir := flag.String("profile", "", "write CPU profiles of the agent (this process) and the API server during the dispatch bursts to this directory")
	scaleN := flag.Int("scale", 10000, "Jobs tracked at once for the memory and restart figures")
	flag.Parse()
	var sizes []int
	for _, f := range strings.Split(*throughputN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -throughput: %q is not a positive number of runs\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(*binDir, sizes, *scaleN, *profileDir, sections(*only)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sections parses -only: which sections to run (all when empty).
func sections(only string) func(string) bool {
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	return func(s string) bool { return only == "" || want[s] }
}

// began is when the bench started; progress lines on stderr count from it.
var began = time.Now()

func progress(what string) {
	fmt.Fprintf(os.Stderr, "bench: %s (at %s)\n", what, time.Since(began).Round(time.Second))
}

func run(binDir string, throughputSizes []int, scaleN int, profileDir string, section func(string) bool) error {
	ctx := context.Background()
	// The runner's overhead first, before the cluster loads the machine.
	var overhead float64
	var overheadErr error
	if section("runner") {
		progress("runner overhead")
		overhead, overheadErr = runnerOverhead()
	}
	cluster.DownStale(false)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupted)

	res := map[string]any{"machine": fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())}
	table := [][2]string{}
	add := func(k string, v any, label string) {
		res[k] = v
		table = append(table, [2]string{label, fmt.Sprint(v)})
	}

	// Dispatch, notice and throughput share one cluster and the agent in
	// this process; scale gets a fresh cluster, so the Jobs the others
	// left do not weigh on it.
	var b *bench
	stopAgent := func() {}
	if section("dispatch") || section("notice") || section("throughput") {
		var stop func()
		var err error
		if b, stop, err = startBench(ctx, binDir, profileDir, "bench", interrupted); err != nil {
			return err
		}
		defer stop()
		if stopAgent, err = b.startAgent(b.agentClient, 5000); err != nil {
			return err
		}
		defer stopAgent()
	}

	// 1. Dispatch latency: request renamed into requests/ → Job seen.
	if section("dispatch") {
		progress("dispatch")
		b.autoExit = true
		stopProfile, err := b.profile(ctx, profileDir, "dispatch")
		if err != nil {
			return err
		}
		var single dispatchTimes
		for range 20 {
			d, err := b.burst(1)
			if err != nil {
				return err
			}
			single.append(d)
		}
		add("dispatch_single_p50_ms", ms(pct(single.total, 50)), "dispatch latency (request renamed → Job seen), single request, p50 (ms)")
		add("dispatch_single_p99_ms", ms(pct(single.total, 99)), "dispatch latency, single request, p99 (ms)")
		add("dispatch_single_agent_p99_ms", ms(pct(single.agent, 99)), "  agent's share (request → create sent), single, p99 (ms)")
		// Bursts of 100, each followed by the same 100 Jobs created at once
		// by a bare client with no agent, measured the same way: the API
		// server's own share. Rounds interleave so both see the same cluster.
		var burst100 dispatchTimes
		var floor100 []time.Duration
		for range burstRounds {
			d, err := b.burst(100)
			if err != nil {
				return err
			}
			burst100.append(d)
			f, err := b.floor(ctx, 100)
			if err != nil {
				return err
			}
			floor100 = append(floor100, f...)
		}
		add("dispatch_burst100_p50_ms", ms(pct(burst100.total, 50)), fmt.Sprintf("dispatch latency, burst of 100 (%d bursts), p50 (ms)", burstRounds))
		add("dispatch_burst100_p99_ms", ms(pct(burst100.total, 99)), "dispatch latency, burst of 100, p99 (ms)")
		res["dispatch_p99_ms"] = ms(pct(burst100.total, 99))
		add("dispatch_burst100_agent_p50_ms", ms(pct(burst100.agent, 50)), "  agent's share (request → create sent), burst of 100, p50 (ms)")
		add("dispatch_burst100_agent_p99_ms", ms(pct(burst100.agent, 99)), "  agent's share, burst of 100, p99 (ms)")
		add("dispatch_burst100_api_p99_ms", ms(pct(burst100.api, 99)), "  API server's share (create sent → answered), burst of 100, p99 (ms)")
		add("api_floor_burst100_p50_ms", ms(pct(floor100, 50)), "API server alone: 100 Jobs created at once by a bare client, p50 (ms)")
		add("api_floor_burst100_p99_ms", ms(pct(floor100, 99)), "API server alone: 100 Jobs created at once by a bare client, p99 (ms)")
		// The agent's added latency over the bare client, in the same run
		// (target: within 10% at p99).
		add("dispatch_overhead_p50_pct", overheadPct(pct(burst100.total, 50), pct(floor100, 50)), "agent's dispatch over the bare client, burst of 100, p50 (%)")
		add("dispatch_overhead_p99_pct", overheadPct(pct(burst100.total, 99), pct(floor100, 99)), "agent's dispatch over the bare client, burst of 100, p99 (%; target ≤ 10)")
		d, err := b.burst(1000)
		if err != nil {
			return err
		}
		add("dispatch_burst1000_p50_ms", ms(pct(d.total, 50)), "dispatch latency, burst of 1000, p50 (ms)")
		add("dispatch_burst1000_p99_ms", ms(pct(d.total, 99)), "dispatch latency, burst of 1000, p99 (ms)")
		add("dispatch_burst1000_agent_p99_ms", ms(pct(d.agent, 99)), "  agent's share, burst of 1000, p99 (ms)")
		if err := stopProfile(); err != nil {
			return err
		}
	}

	// 2. Completion notice vs a 5 s poller, on 100 runs kept Running.
	if section("notice") {
		progress("notice")
		b.autoExit = false
		notice, poll, err := b.notice(ctx, 100)
		if err != nil {
			return err
		}
		add("completion_notice_p50_ms", ms(pct(notice, 50)), "completion notice (result.json → terminal status.json), p50 (ms)")
		add("completion_notice_p99_ms", ms(pct(notice, 99)), "completion notice, p99 (ms)")
		add("poll_baseline_notice_mean_ms", ms(mean(poll)), "5 s poller (Mage's executor) notice, mean (ms)")
		add("notice_speedup", round(float64(mean(poll))/float64(max(mean(notice), time.Microsecond)), 1), "notice speed-up (poller mean / agent mean)")
	}

	// 3. Throughput: n runs requested at once, run and finished.
	if section("throughput") {
		progress("throughput")
		b.autoExit = true
		for _, n := range throughputSizes {
			created, finished, err := b.throughput(n)
			if err != nil {
				return err
			}
			add(fmt.Sprintf("throughput_%d_created_per_s", n), round(created, 1), fmt.Sprintf("throughput, %d runs requested at once: Jobs created per second", n))
			add(fmt.Sprintf("throughput_%d_finished_per_s", n), round(finished, 1), fmt.Sprintf("throughput, %d runs: runs finished per second", n))
			res["throughput_runs_per_s"] = round(created, 1)
		}
	}

	// 4. Scale: Jobs tracked at once (kept Running), then a restart.
	if section("scale") {
		progress("scale")
		if b != nil {
			stopAgent()
			b.stop()
		}
		sb, stop, err := startBench(ctx, binDir, profileDir, "bench-scale", interrupted)
		if err != nil {
			return err
		}
		defer stop()
		rss, idleCPU, ready, err := sb.scale(ctx, scaleN)
		if err != nil {
			return err
		}
		add("scale_jobs", scaleN, "scale: Jobs tracked at once")
		add("rss_10k_mib", round(rss, 1), fmt.Sprintf("agent peak RSS with %d Jobs tracked (MiB)", scaleN))
		add("idle_cpu_percent", idleCPU, "agent CPU while idle with them (% of one core)")
		add("restart_ready_10k_s", round(ready.Seconds(), 2), fmt.Sprintf("restart: list, adopt %d runs, ready (s)", scaleN))
	}

	// 5. Runner overhead, from the runner's benchmark.
	if section("runner") {
		if overheadErr == nil {
			add("runner_overhead_ms", overhead, "runner overhead: added wall time (ms)")
		} else {
			res["runner_overhead_ms"] = nil
			fmt.Fprintln(os.Stderr, "runner benchmark:", overheadErr)
		}
	}

	progress("done")
	fmt.Printf("\n| %s | figure |\n|---|---|\n", "measured on "+res["machine"].(string))
	for _, row := range table {
		fmt.Printf("| %s | %s |\n", row[0], row[1])
	}
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	return nil
}

// startBench starts a cluster with four kwok nodes, a Mage server pod in
// namespace ns with its run directory, the bench's watch, and the client
// the agent uses. The returned func (also b.stop, and run on interrupt)
// stops all of it.
func startBench(ctx context.Context, binDir, profileDir, ns string, interrupted <-chan os.Signal) (*bench, func(), error) {
	work := filepath.Join(cluster.Root, fmt.Sprintf("%s-%d", ns, os.Getpid()))
	c, err := cluster.Start(ctx, cluster.Options{BinDir: binDir, WorkDir: work, FakeNodes: 4})
	if err != nil {
		return nil, nil, err
	}
	b := &bench{profileDir: profileDir, kubecfg: c.Kubeconfig, jobSeen: map[string]time.Time{}, jobDone: map[string]bool{}, podOf: map[string]string{}, keyOf: map[string]string{}, running: map[string]chan struct{}{}}
	var cleanups []func()
	b.stop = sync.OnceFunc(func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		c.Stop()
	})
	done := make(chan struct{})
	cleanups = append(cleanups, func() { close(done) })
	go func() {
		select {
		case sig := <-interrupted:
			fmt.Fprintln(os.Stderr, "bench:", sig, "- stopping the cluster")
			b.stop()
			os.Exit(130)
		case <-done:
		}
	}()
	fail := func(err error) (*bench, func(), error) { b.stop(); return nil, nil, err }
	cfg, err := c.RESTConfig()
	if err != nil {
		return fail(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000 // the bench's own client must not be the bottleneck
	if b.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return fail(err)
	}
	if b.project, err = os.MkdirTemp("", "magekube-bench-project"); err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(b.project) })
	if err := os.WriteFile(filepath.Join(b.project, "metadata.yaml"), []byte("k8s_executor_config:\n  job_name_prefix: b\n"), 0o644); err != nil {
		return fail(err)
	}
	if err := b.server(ctx, ns); err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(b.layout.Root) })
	cleanups = append(cleanups, b.watch(ctx))
	// The agent under test gets its production client settings except a
	// rate limit sized for the bench.
	agentCfg, err := kube.Config(kube.Options{Kubeconfig: c.Kubeconfig, QPS: 200, Burst: 400})
	if err != nil {
		return fail(err)
	}
	agentCfg.Wrap(b.creates.wrap) // the agent's share and the API server's, per run
	if b.agentClient, err = kubernetes.NewForConfig(agentCfg); err != nil {
		return fail(err)
	}
	return b, b.stop, nil
}

// server makes a fresh Mage server pod in a new namespace, with its own
// run directory, the agent's from then on.
func (b *bench) server(ctx context.Context, ns string) error {
	if _, err := b.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	pod, err := b.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mage-server"},
		Spec: corev1.PodSpec{
			Containers:  []corev1.Container{{Name: "mage", Image: "mage:bench"}, {Name: "magekube-agent", Image: "magekube/agent:bench"}},
			Tolerations: []corev1.Toleration{cluster.FakeNodeToleration()},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "magekube-bench-runs")
	if err != nil {
		return err
	}
	b.ns, b.pod, b.layout = ns, pod, protocol.Layout{Root: root}
	return nil
}

// watch records when each Job is first seen and ends pods that go
// Running when autoExit is on (as a block that does nothing would).
func (b *bench) watch(ctx context.Context) func() {
	f := informers.NewSharedInformerFactoryWithOptions(b.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = jobspec.LabelRun }))
	onJob := func(obj any) {
		j := obj.(*batchv1.Job)
		now := time.Now()
		id := j.Labels[jobspec.LabelRun]
		b.mu.Lock()
		if _, ok := b.jobSeen[id]; !ok {
			b.jobSeen[id] = now
		}
		if j.Status.Succeeded > 0 {
			b.jobDone[id] = true
		}
		b.mu.Unlock()
	}
	_, _ = f.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }})
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return
		}
		id := p.Labels[jobspec.LabelRun]
		b.mu.Lock()
		_, known := b.podOf[id]
		b.podOf[id] = p.Name
		b.keyOf[id] = p.Labels[protocol.RunKeyLabel]
		ch := b.running[id]
		auto := b.autoExit
		b.mu.Unlock()
		if known || id == "" {
			return
		}
		if ch != nil {
			close(ch)
		}
		if auto {
			go b.end(ctx, id, p.Name, p.Labels[protocol.RunKeyLabel])
		}
	}
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	stop := make(chan struct{})
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return func() { close(stop); f.Shutdown() }
}

// end plays the runner and the container: result.json with exit 0,
// sealed with the run's key (its Job's UID, as the pod's label gives it),
// then the pod's exit.
func (b *bench) end(ctx context.Context, id, pod, key string) {
	now := time.Now().UTC()
	res := protocol.Result{ExitCode: 0, Reason: protocol.ReasonCompleted, StartedAt: now, FinishedAt: now, Attempt: 1, Pod: pod}
	res.Seal = protocol.SealResult(key, id, res)
	_ = protocol.WriteJSONAtomic(b.layout.RunFile(id, protocol.ResultFile), res)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0"}}}`, cluster.ExitCodeAnnotation)
	_, _ = b.client.CoreV1().Pods(b.ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{})
}

func (b *bench) startAgent(client kubernetes.Interface, maxInflight int) (func(), error) {
	a, err := dispatch.New(dispatch.Options{
		Layout: b.layout, Client: client, Pod: b.pod, MaxInflight: maxInflight, Rescan: 30 * time.Second,
		Builder: b.builder(),
		Log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	for !a.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	return sync.OnceFunc(func() { cancel(); <-done }), nil
}

// profile starts CPU profiles of this process (the agent) and of the
// API server (its /debug/pprof) into dir; the returned func stops both.
// No dir: nothing.
func (b *bench) profile(ctx context.Context, dir, name string) (func() error, error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, name+"-agent.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	// The API server profiles for a fixed time; ask for more than the
	// section needs and cut it when the section ends.
	apiCtx, stopAPI := context.WithCancel(ctx)
	apiDone := make(chan error, 1)
	go func() {
		data, err := b.client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "60").DoRaw(apiCtx)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+"-apiserver.pprof"), data, 0o644)
		}
		apiDone <- err
	}()
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		err := <-apiDone
		stopAPI()
		fmt.Fprintf(os.Stderr, "profiles in %s: go tool pprof -top %s-agent.pprof / %s-apiserver.pprof\n", dir, name, name)
		return err
	}, nil
}

// floor creates n Jobs, built as the agent builds them, at once with a
// bare client and returns request → Job seen for each: what the API
// server and the watch alone cost.
func (b *bench) floor(ctx context.Context, n int) ([]time.Duration, error) {
	builder := b.builder()
	jobs := make([]*batchv1.Job, n)
	for i := range jobs {
		b.n++
		req, err := protocol.ParseRequest(fmt.Appendf(nil, `{"apiVersion":"magekube/v1","id":"floor-%d","kind":"block","project_dir":"/p","pipeline_uuid":"bench","block_uuid":"b","block_run_id":%d}`, b.n, b.n))
		if err != nil {
			return nil, err
		}
		if jobs[i], err = builder.Build(b.pod, req); err != nil {
			return nil, err
		}
	}
	at := make([]time.Time, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() {
			at[i] = time.Now()
			_, err := b.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
	}
	out := make([]time.Duration, n)
	deadline := time.Now().Add(5 * time.Minute)
	for i, job := range jobs {
		for {
			b.mu.Lock()
			seen, ok := b.jobSeen[job.Labels[jobspec.LabelRun]]
			done := b.jobDone[job.Labels[jobspec.LabelRun]]
			b.mu.Unlock()
			if ok && done { // done too: the next burst starts on a quiet cluster
				out[i] = seen.Sub(at[i])
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("floor: job %s not seen and completed", job.Name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return out, nil
}

func (b *bench) builder() jobspec.Builder {
	return jobspec.Builder{
		Settings:  jobspec.Settings{AgentContainer: "magekube-agent", Instance: "bench"},
		ProjectFS: func(string) fs.FS { return os.DirFS(b.project) },
	}
}

// submit writes n requests at once and returns their ids and times.
func (b *bench) submit(n int) ([]string, []time.Time) {
	ids, at := make([]string, n), make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		b.n++
		ids[i] = "r" + strconv.Itoa(b.n)
		req := fmt.Appendf(nil, `{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":"/p","pipeline_uuid":"bench","block_uuid":"b","block_run_id":%d}`, ids[i], b.n)
		wg.Go(func() {
			tmp := filepath.Join(b.layout.Requests(), "."+ids[i]+".tmp")
			_ = os.WriteFile(tmp, req, 0o644)
			at[i] = time.Now()
			_ = os.Rename(tmp, b.layout.RequestPath(ids[i]))
		})
	}
	wg.Wait()
	return ids, at
}

// dispatchTimes are one set of dispatch latencies: request → Job seen,
// and its parts request → create sent (the agent) and sent → answered
// (the API server).
type dispatchTimes struct{ total, agent, api []time.Duration }

func (d *dispatchTimes) append(o dispatchTimes) {
	d.total, d.agent, d.api = append(d.total, o.total...), append(d.agent, o.agent...), append(d.api, o.api...)
}

func (b *bench) burst(n int) (dispatchTimes, error) {
	ids, at := b.submit(n)
	deadline := time.Now().Add(5 * time.Minute)
	var out []time.Duration
	for i := 0; i < len(ids); {
		b.mu.Lock()
		seen, ok := b.jobSeen[ids[i]]
		b.mu.Unlock()
		if ok {
			out = append(out, seen.Sub(at[i]))
			i++
			continue
		}
		if time.Now().After(deadline) {
			return dispatchTimes{}, fmt.Errorf("run %s: no Job after 5 minutes", ids[i])
		}
		time.Sleep(time.Millisecond)
	}
	agent, api := b.creates.split(ids, at)
	return dispatchTimes{total: out, agent: agent, api: api}, b.waitTerminal(ids, 10*time.Minute)
}

func (b *bench) waitTerminal(ids []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			if s, err := protocol.ReadStatus(b.layout, id); err == nil && s.Phase.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("run %s not finished after %s", id, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// notice keeps n runs Running, then ends each at a recorded instant and
// measures when status.json turns terminal; in the same run a poller per
// Job reads its status every 5 s from the Job's creation, as Mage's
// executor does, and notes when it sees the end.
func (b *bench) notice(ctx context.Context, n int) (agent, poll []time.Duration, err error) {
	ids, _ := b.submit(n)
	for _, id := range ids {
		b.mu.Lock()
		b.running[id] = make(chan struct{})
		b.mu.Unlock()
	}
	for _, id := range ids {
		b.mu.Lock()
		ch := b.running[id]
		_, already := b.podOf[id]
		b.mu.Unlock()
		if !already {
			select {
			case <-ch:
			case <-time.After(3 * time.Minute):
				return nil, nil, fmt.Errorf("run %s never Running", id)
			}
		}
	}
	ended := make([]time.Time, n)
	var wg sync.WaitGroup
	polled := make([]time.Duration, n)
	for i, id := range ids {
		s, _ := protocol.ReadStatus(b.layout, id)
		job, err := b.client.BatchV1().Jobs(b.ns).Get(ctx, s.Job, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		// Mage's loop polls every 5 s from the create; its phase relative
		// to the block's end is what decides the delay.
		phase := time.Duration(rand.Int64N(int64(5 * time.Second)))
		wg.Go(func() {
			next := time.Now().Add(phase)
			for {
				time.Sleep(time.Until(next))
				j, err := b.client.BatchV1().Jobs(b.ns).Get(ctx, job.Name, metav1.GetOptions{})
				if err == nil && j.Status.Succeeded > 0 {
					polled[i] = time.Since(ended[i])
					return
				}
				next = next.Add(5 * time.Second)
			}
		})
	}
	time.Sleep(time.Second)
	for i, id := range ids {
		b.mu.Lock()
		pod, key := b.podOf[id], b.keyOf[id]
		b.mu.Unlock()
		ended[i] = time.Now()
		b.end(ctx, id, pod, key)
		time.Sleep(20 * time.Millisecond) // one at a time: no queueing in the figure
	}
	for i, id := range ids {
		for {
			s, err := protocol.ReadStatus(b.layout, id)
			if err == nil && s.Phase.Terminal() {
				agent = append(agent, s.UpdatedAt.Sub(ended[i]))
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Wait()
	return agent, polled, nil
}

func (b *bench) throughput(n int) (created, finished float64, err error) {
	start := time.Now()
	ids, _ := b.submit(n)
	var lastCreated time.Time
	if err := b.waitTerminal(ids, 10*time.Minute); err != nil {
		return 0, 0, err
	}
	end := time.Now()
	b.mu.Lock()
	for _, id := range ids {
		if t := b.jobSeen[id]; t.After(lastCreated) {
			lastCreated = t
		}
	}
	b.mu.Unlock()
	return float64(n) / lastCreated.Sub(start).Seconds(), float64(n) / end.Sub(start).Seconds(), nil
}

// scale runs the agent as its own process (for an honest RSS) with n
// Jobs Running, then restarts it and times list + adopt + ready.
func (b *bench) scale(ctx context.Context, n int) (rssMiB, idleCPU float64, ready time.Duration, err error) {
	stop, err := b.startAgent(b.agentClient, n+1)
	if err != nil {
		return 0, 0, 0, err
	}
	for done := 0; done < n; done += 1000 {
		ids, _ := b.submit(min(1000, n-done))
		deadline := time.Now().Add(5 * time.Minute)
		for _, id := range ids {
			for {
				b.mu.Lock()
				_, ok := b.jobSeen[id]
				b.mu.Unlock()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					stop()
					return 0, 0, 0, fmt.Errorf("scale: run %s has no Job", id)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	// Idle means every pod is Running and nothing moves.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		b.mu.Lock()
		running := len(b.podOf)
		b.mu.Unlock()
		if running >= n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return 0, 0, 0, fmt.Errorf("scale: %d of %d pods Running after 10 minutes", running, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	// The agent as a process: its RSS and CPU are its own.
	bin, err := buildAgent()
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(filepath.Dir(bin))
	args := []string{"--kubeconfig", b.kubecfg, "--pod-name", b.pod.Name, "--pod-namespace", b.ns, "--dir", b.layout.Root,
		"--instance", "bench", "--kube-qps", "200", "--kube-burst", "400", "run", "--max-inflight", strconv.Itoa(n + 1), "--listen", "127.0.0.1:0", "--log-format", "json", "--profiling"}
	start := time.Now()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MAGEKUBE_AGENT_CONTAINER=magekube-agent")
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	readyRe := regexp.MustCompile(`"msg":"agent ready"`)
	addrRe := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	addr := ""
	buf := make([]byte, 1<<16)
	var acc []byte
	for !readyRe.Match(acc) {
		k, rerr := out.Read(buf)
		acc = append(acc[max(0, len(acc)-4096):], buf[:k]...)
		if m := addrRe.FindSubmatch(acc); m != nil && addr == "" {
			addr = string(m[1])
		}
		if rerr != nil {
			return 0, 0, 0, fmt.Errorf("restarted agent: %v: %s", rerr, acc)
		}
		if time.Since(start) > 3*time.Minute {
			return 0, 0, 0, fmt.Errorf("restarted agent not ready after 3 minutes")
		}
	}
	ready = time.Since(start)
	go func() { _, _ = drain(out) }()
	time.Sleep(5 * time.Second)
	t0 := cpuTicks(cmd.Process.Pid)
	time.Sleep(10 * time.Second)
	idleCPU = round(float64(cpuTicks(cmd.Process.Pid)-t0)/100/10*100, 2)
	if b.profileDir != "" && addr != "" {
		if err := fetch("http://"+addr+"/debug/pprof/heap", filepath.Join(b.profileDir, "scale-agent-heap.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "heap profile:", err)
		}
	}
	return float64(peakRSS(cmd.Process.Pid)) / 1024, idleCPU, ready, nil
}

// fetch saves the body of a GET.
func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func drain(r interface{ Read([]byte) (int, error) }) (int, error) {
	buf := make([]byte, 1<<16)
	for {
		if _, err := r.Read(buf); err != nil {
			return 0, err
		}
	}
}

func buildAgent() (string, error) {
	dir, err := os.MkdirTemp("", "magekube-bench-agent")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "agent")
	out, err := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", bin, "github.com/magekube/magekube/cmd/agent").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("build agent: %v: %s", err, out)
	}
	return bin, nil
}

// peakRSS is VmHWM in KiB.
func peakRSS(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// cpuTicks is utime+stime in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := regexp.MustCompile(`\) \S+ (.*)`).FindSubmatch(data)
	if f == nil {
		return 0
	}
	var fields []int
	for _, s := range regexp.MustCompile(`\s+`).Split(string(f[1]), -1) {
		v, _ := strconv.Atoi(s)
		fields = append(fields, v)
	}
	if len(fields) < 13 {
		return 0
	}
	return fields[10] + fields[11] // utime, stime (fields 14 and 15 of stat)
}

func runnerOverhead() (float64, error) {
	out, err := exec.Command("go", "test", "-tags", "urfave_cli_no_docs", "-run", "^$", "-bench", "ExecOverhead", "-benchtime", "300x", "./pkg/runner").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	m := regexp.MustCompile(`([\d.]+) added-ms/op`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no added-ms/op in: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(1, len(d)))
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func round(v float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return p
}

// overheadPct is how much longer agent took than floor, in percent.
func overheadPct(agent, floor time.Duration) float64 {
	if floor <= 0 {
		return 0
	}
	return math.Round(float64(agent-floor)/float64(floor)*1000) / 10
}
