package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/framework"
)

// The peer section runs the same block runs twice on one kwok cluster:
// through Mage's own K8sBlockExecutor (the pinned mage-ai: its JobManager
// creates the Job, polls it every 5 s, deletes it) and through magekube's
// trigger and the agent (its own process). integrations/mage/bench_peer.py
// is the Mage side; this file plays the pods (each Running pod is ended
// with its exit code) and counts each side's API requests in the API
// server's own audit log, by user agent.

// User agents in the audit log: the Kubernetes Python client Mage's
// executor uses, and the agent.
const (
	mageUserAgent  = "OpenAPI-Generator/"
	agentUserAgent = "magekube-agent/"
)

// peerPods ends the pods of every Job in the namespace as a block would:
// exit 0, except a run to fail (every attempt 1) or to retry (the first
// attempt 1). It records when each Job was first seen and when its last
// pod was ended.
type peerPods struct {
	b *bench
	// real: the pods run on real nodes and end by themselves; a pod's end
	// is when its phase is first seen Succeeded or Failed.
	real bool
	mu   sync.Mutex
	fail map[int]bool
	// retry: the first attempt fails, the second succeeds.
	retry    map[int]bool
	seen     map[string]time.Time // Job → first seen
	ended    map[string]time.Time // Job → its last pod ended
	attempts map[string]int       // Job → pods ended (played pods)
	done     map[string]bool      // pod → ended
	runOf    map[string]string    // Job → its magekube run id (magekube's Jobs)
}

var blockRunID = regexp.MustCompile(`-block-(\d+)`)

func (p *peerPods) start(ctx context.Context) func() {
	f := informers.NewSharedInformerFactoryWithOptions(p.b.client, 0, informers.WithNamespace(p.b.ns))
	onJob := func(obj any) {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		now := time.Now()
		p.mu.Lock()
		if id := j.Labels[jobspec.LabelRun]; id != "" {
			p.runOf[j.Name] = id
		}
		if _, ok := p.seen[j.Name]; !ok {
			p.seen[j.Name] = now
		}
		p.mu.Unlock()
	}
	_, _ = f.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }})
	onPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if ok && p.real {
			p.seenEnd(pod)
			return
		}
		if !ok || pod.Status.Phase != corev1.PodRunning || pod.Labels["job-name"] == "" {
			return
		}
		p.mu.Lock()
		if p.done[pod.Name] {
			p.mu.Unlock()
			return
		}
		p.done[pod.Name] = true
		job := pod.Labels["job-name"]
		p.attempts[job]++
		attempt := p.attempts[job]
		p.mu.Unlock()
		go p.end(ctx, pod, job, attempt)
	}
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	stop := make(chan struct{})
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return func() { close(stop); f.Shutdown() }
}

// seenEnd records a real pod's end when it is first seen ended: the
// container runtime's timestamp of its last log line (the block's last
// output: both sides' pods print Mage's "Pipeline run completed." last),
// which precedes the phase the API server shows by up to a kubelet sync.
func (p *peerPods) seenEnd(pod *corev1.Pod) {
	job := pod.Labels["job-name"]
	if job == "" || (pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed) {
		return
	}
	p.mu.Lock()
	first := !p.done[pod.Name]
	p.done[pod.Name] = true
	p.mu.Unlock()
	if !first {
		return
	}
	go func() { // before Mage's executor deletes the Job
		tailLines := int64(40)
		logs, err := p.b.client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: &tailLines, Timestamps: true}).DoRaw(context.Background())
		end, ok := lastLogTime(logs)
		if err != nil || !ok {
			fmt.Fprintf(os.Stderr, "bench: pod %s: no timestamped log (%v); its end is when it was seen ended\n", pod.Name, err)
			end = time.Now()
		}
		p.mu.Lock()
		p.ended[job] = end
		p.mu.Unlock()
		if pod.Status.Phase == corev1.PodFailed {
			fmt.Fprintf(os.Stderr, "bench: pod %s of Job %s failed; its log:\n%s\n", pod.Name, job, logs)
		}
	}()
}

// lastLogTime is the timestamp of a pod log's last line (a log read with
// timestamps: each line starts with an RFC 3339 time).
func lastLogTime(logs []byte) (time.Time, bool) {
	lines := strings.Split(strings.TrimSpace(string(logs)), "\n")
	stamp, _, _ := strings.Cut(lines[len(lines)-1], " ")
	t, err := time.Parse(time.RFC3339Nano, stamp)
	return t, err == nil
}

// waitEnded waits until each of the jobs has its end recorded (real
// pods: the watch and the log read follow the executor's return).
func (p *peerPods) waitEnded(jobs []string, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		missing := 0
		for _, j := range jobs {
			if p.ended[j].IsZero() {
				missing++
			}
		}
		p.mu.Unlock()
		if missing == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// end gives the pod its exit code (bench.endWith).
func (p *peerPods) end(ctx context.Context, pod *corev1.Pod, job string, attempt int) {
	endedAt := time.Now() // the block's end: its result, then its container's exit
	code := 0
	if m := blockRunID.FindStringSubmatch(job); m != nil {
		id, _ := strconv.Atoi(m[1])
		if p.fail[id] || (p.retry[id] && attempt == 1) {
			code = 1
		}
	}
	if err := p.b.endWith(ctx, pod.Labels[jobspec.LabelRun], pod.Name, pod.Labels[protocol.RunKeyLabel], code, attempt); err != nil {
		fmt.Fprintln(os.Stderr, "bench: end pod:", err)
		return
	}
	p.mu.Lock()
	p.ended[job] = endedAt
	p.mu.Unlock()
}

// peerRun is one executor call as bench_peer.py reports it.
type peerRun struct {
	BlockRunID int     `json:"block_run_id"`
	Call       float64 `json:"call"`
	Return     float64 `json:"return"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error"`
}

// peerSide is one side's figures for one batch.
type peerSide struct {
	created, notice  []time.Duration // call → Job seen; last pod ended → executor returned
	exitNotice       []time.Duration // real nodes, magekube: the block's exit (the runner's result) → executor returned
	requestsPerRun   float64
	requestsBy       map[string]int // verb and resource ("create events"): requests
	cpuS, peakRSSMiB float64        // the executor process (Python); for magekube plus the agent's CPU
	agentCPUS        float64
	outcomes         map[int]bool
}

// peerBatch runs the block runs ids through one side and measures them.
// work is Mage's project and database; on real nodes Mage's rows for the
// runs are made there too (their Jobs run `mage run` against them).
func (b *bench) peerBatch(ctx context.Context, p *peerPods, repo, python, mode string, first, last int, agent *agentProcess, work string) (peerSide, error) {
	args := []string{filepath.Join("integrations", "mage", "bench_peer.py"), "--mode", mode,
		"--ids", fmt.Sprintf("%d-%d", first, last), "--namespace", b.ns, "--pod", b.pod.Name,
		"--kubeconfig", b.kubecfg, "--magekube-dir", b.layout.Root, "--work", work}
	if p.real {
		args = append(args, "--db-rows")
	}
	var cpu0 int
	if agent != nil {
		cpu0 = cpuTicks(agent.cmd.Process.Pid)
	}
	if mode == "magekube" && agent != nil && agent.addr != "" && b.profileDir != "" { // the agent's CPU while the batch runs
		go func() {
			path := filepath.Join(b.profileDir, fmt.Sprintf("peer-%d-agent-cpu.pprof", last-first+1))
			if err := fetch("http://"+agent.addr+"/debug/pprof/profile?seconds=15", path); err != nil {
				fmt.Fprintln(os.Stderr, "bench: the agent's CPU profile:", err)
			}
		}()
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = repo
	// The Kubernetes Python client writes the kubeconfig's CA into a temp
	// file it never removes: in work, which is removed.
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	var stderr strings.Builder // Mage's own log lines; shown when it fails
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return peerSide{}, fmt.Errorf("bench_peer.py --mode %s: %w\n%s", mode, err, tail(stderr.String(), 3000))
	}
	var res struct {
		Runs       []peerRun `json:"runs"`
		CPUS       float64   `json:"cpu_s"`
		PeakRSSMiB float64   `json:"peak_rss_mib"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return peerSide{}, fmt.Errorf("bench_peer.py --mode %s: %w: %s", mode, err, out)
	}
	side := peerSide{cpuS: res.CPUS, peakRSSMiB: res.PeakRSSMiB, outcomes: map[int]bool{}}
	if mode == "magekube" && agent != nil {
		side.agentCPUS = float64(cpuTicks(agent.cmd.Process.Pid)-cpu0) / 100
	}
	jobs := b.peerJobs(p)
	if p.real {
		var names []string
		for _, r := range res.Runs {
			if j, ok := jobs[r.BlockRunID]; ok {
				names = append(names, j)
			}
		}
		p.waitEnded(names, time.Minute)
	}
	for _, r := range res.Runs {
		side.outcomes[r.BlockRunID] = r.OK
		if !r.OK && !p.failing(r.BlockRunID) {
			fmt.Fprintf(os.Stderr, "bench: peer %s run %d failed: %s\n", mode, r.BlockRunID, r.Error)
		}
		job, ok := jobs[r.BlockRunID]
		if !ok {
			continue
		}
		p.mu.Lock()
		seen, ended := p.seen[job], p.ended[job]
		p.mu.Unlock()
		call, ret := unixTime(r.Call), unixTime(r.Return)
		if !seen.IsZero() {
			side.created = append(side.created, seen.Sub(call))
		}
		if !ended.IsZero() && (r.OK || p.real) {
			side.notice = append(side.notice, ret.Sub(ended))
		}
		p.mu.Lock()
		id := p.runOf[job]
		p.mu.Unlock()
		var result protocol.Result
		if p.real && id != "" && protocol.ReadJSON(b.layout.RunFile(id, protocol.ResultFile), &result) == nil {
			side.exitNotice = append(side.exitNotice, ret.Sub(result.FinishedAt))
		}
	}
	if b.auditLog == "" {
		return side, nil // no audit log on this cluster
	}
	// What the runs cost includes what their ends send after the executor
	// returned (the agent's final Event, which client-go's broadcaster
	// sends at its pace): the count runs 3 s past the last return.
	time.Sleep(3 * time.Second)
	t1 := time.Now()
	ua := mageUserAgent
	if mode == "magekube" {
		ua = agentUserAgent
	}
	n, by, err := cluster.CountRequests(b.auditLog, t0, t1, func(ev cluster.AuditEvent) bool { return strings.HasPrefix(ev.UserAgent, ua) })
	if err != nil {
		return peerSide{}, err
	}
	side.requestsPerRun, side.requestsBy = float64(n)/float64(last-first+1), by
	return side, nil
}

// peerJobs maps block run ids to the Jobs seen for them.
func (b *bench) peerJobs(p *peerPods) map[int]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int]string{}
	for job := range p.seen {
		if m := blockRunID.FindStringSubmatch(job); m != nil {
			id, _ := strconv.Atoi(m[1])
			out[id] = job
		}
	}
	return out
}

// failing reports whether the run is meant to fail at least once.
func (p *peerPods) failing(id int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fail[id] || p.retry[id]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func unixTime(s float64) time.Time {
	return time.Unix(0, int64(s*float64(time.Second)))
}

// peerSection compares Mage's executor and magekube on batches of sizes
// block runs, and on a retried success and a failing block.
func peerSection(ctx context.Context, binDir, profileDir, repo, python string, sizes []int, interrupted <-chan os.Signal, rep *report) error {
	b, stop, err := startBench(ctx, binDir, profileDir, "", "bench-peer", true, interrupted)
	if err != nil {
		return err
	}
	defer stop()
	p := &peerPods{b: b, fail: map[int]bool{}, retry: map[int]bool{}, seen: map[string]time.Time{}, ended: map[string]time.Time{},
		attempts: map[string]int{}, done: map[string]bool{}, runOf: map[string]string{}}
	defer p.start(ctx)()
	// Mage's executor merges its server container's env and the pod's
	// volumes into each Job (and fails on a pod without them): a server pod
	// shaped like a real Mage one.
	pod, err := framework.CreateServerPod(ctx, b.client, framework.PodOptions{Name: "mage-server-peer", Namespace: b.ns, OnFakeNodes: true,
		MageImage: "mage:bench", AgentImage: "magekube/agent:bench", Shared: "/srv/mage",
		Env: []corev1.EnvVar{{Name: "USER_CODE_PATH", Value: "/home/src/repo"}}})
	if err != nil {
		return err
	}
	b.pod = pod
	agent, err := b.startAgentProcess(10000)
	if err != nil {
		return err
	}
	defer agent.stop()
	next := 1
	batch := func(mode string, n int) (peerSide, error) {
		first := next
		next += n
		progress(fmt.Sprintf("peer: %d block runs through %s", n, mode))
		work, err := os.MkdirTemp("", "magekube-bench-peer-")
		if err != nil {
			return peerSide{}, err
		}
		defer os.RemoveAll(work)
		return b.peerBatch(ctx, p, repo, python, mode, first, first+n-1, agent, work)
	}
	var last map[string]any
	for _, n := range sizes {
		mage, err := batch("mage", n)
		if err != nil {
			return err
		}
		mk, err := batch("magekube", n)
		if err != nil {
			return err
		}
		last = peerRows(rep, n, mage, mk)
	}
	for k, v := range last {
		rep.res[k] = v
	}
	// Outcomes: a block whose first attempt fails and second succeeds, and
	// one whose every attempt fails (backoff_limit 1: two attempts).
	outcome := map[string]string{}
	for _, mode := range []string{"mage", "magekube"} {
		retryID, failID := next, next+1
		p.mu.Lock()
		p.retry[retryID], p.fail[failID] = true, true
		p.mu.Unlock()
		side, err := batch(mode, 2)
		if err != nil {
			return err
		}
		outcome[mode+"_retried"] = word(side.outcomes[retryID])
		outcome[mode+"_failing"] = word(side.outcomes[failID])
	}
	rep.add("peer_retried_success", outcome["mage_retried"]+" / "+outcome["magekube_retried"],
		"a block that fails once, then succeeds (backoff_limit 1): Mage's executor / magekube (want succeeded)")
	rep.add("peer_failing_block", outcome["mage_failing"]+" / "+outcome["magekube_failing"],
		"a block that fails every attempt: Mage's executor / magekube (want failed)")
	return nil
}

func word(ok bool) string {
	if ok {
		return "succeeded"
	}
	return "failed"
}

// sideBySide adds a row of Mage's executor's figure m and magekube's k,
// and their ratio, to the table; prefix names the batch.
func sideBySide(rep *report, prefix string) func(what string, m, k float64, unit string) {
	return func(what string, m, k float64, unit string) {
		ratio := "—"
		if m > 0 {
			ratio = fmt.Sprintf("%.3g", k/m)
		}
		rep.table = append(rep.table, [2]string{fmt.Sprintf("%s: %s (%s), Mage's executor / magekube (ratio)", prefix, what, unit),
			fmt.Sprintf("%.4g / %.4g (%s)", m, k, ratio)})
	}
}

// peerRows adds one batch's side-by-side rows and returns its JSON figures.
func peerRows(rep *report, n int, mage, mk peerSide) map[string]any {
	row := sideBySide(rep, fmt.Sprintf("peer, %d block runs", n))
	row("executor call → Job created, p50", ms(pct(mage.created, 50)), ms(pct(mk.created, 50)), "ms")
	row("executor call → Job created, p99", ms(pct(mage.created, 99)), ms(pct(mk.created, 99)), "ms")
	row("pod ended → executor returned, p50", ms(pct(mage.notice, 50)), ms(pct(mk.notice, 50)), "ms")
	row("pod ended → executor returned, p99", ms(pct(mage.notice, 99)), ms(pct(mk.notice, 99)), "ms")
	row("API requests per run (the API server's audit log)", round(mage.requestsPerRun, 2), round(mk.requestsPerRun, 2), "requests")
	row("executor process CPU per run", 1000*mage.cpuS/float64(n), 1000*mk.cpuS/float64(n), "ms")
	row("executor process peak RSS", round(mage.peakRSSMiB, 1), round(mk.peakRSSMiB, 1), "MiB")
	rep.table = append(rep.table, [2]string{fmt.Sprintf("peer, %d block runs: the agent's CPU per run (ms)", n), fmt.Sprint(round(1000*mk.agentCPUS/float64(n), 2))})
	if mk.requestsBy != nil {
		rep.table = append(rep.table,
			[2]string{fmt.Sprintf("peer, %d block runs: Mage's executor's requests per run, by verb and resource", n), cluster.PerRun(mage.requestsBy, n)},
			[2]string{fmt.Sprintf("peer, %d block runs: magekube's requests per run, by verb and resource", n), cluster.PerRun(mk.requestsBy, n)})
	}
	return map[string]any{
		"peer_runs":                     n,
		"mage_executor_created_ms":      ms(pct(mage.created, 50)),
		"magekube_created_ms":           ms(pct(mk.created, 50)),
		"mage_executor_notice_ms":       ms(pct(mage.notice, 50)),
		"magekube_notice_ms":            ms(pct(mk.notice, 50)),
		"magekube_notice_p99_ms":        ms(pct(mk.notice, 99)),
		"api_requests_per_run_mage":     round(mage.requestsPerRun, 2),
		"api_requests_per_run_magekube": round(mk.requestsPerRun, 2),
	}
}
