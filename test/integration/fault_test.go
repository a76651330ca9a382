//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/framework"
)

// The tests in this file run Jobs on the suite's kwok nodes: a pod goes
// Running at once and ends with the exit code the test annotates it with,
// so hundreds of runs cost no containers.

func needFakeNodes(t *testing.T) {
	t.Helper()
	if env.FakeNodes == 0 {
		t.Skip("the cluster has no kwok nodes")
	}
}

// fakeServerPod is a Mage server pod whose Jobs (which inherit its
// tolerations) land on the kwok nodes.
func fakeServerPod(t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	created, err := framework.CreateServerPod(t.Context(), env.Client, framework.PodOptions{Name: "mage-server-on-kwok", Namespace: ns, OnFakeNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// endPods plays the block containers: it annotates every Running pod of
// the namespace with exit code 0 until ctx ends, riding out API errors.
func endPods(ctx context.Context, ns string, logf func(string, ...any)) {
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, cluster.ExitCodeAnnotation))
	done := map[string]bool{}
	for ctx.Err() == nil {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: jobspec.LabelRun})
		if err == nil {
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && !done[p.Name] {
					if _, err := env.Client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err == nil {
						done[p.Name] = true
						logf("pod %s ended", p.Name)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func startEndingPods(t *testing.T, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { endPods(ctx, ns, t.Logf) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// submitMany writes n requests at once, from n goroutines.
func submitMany(t *testing.T, l protocol.Layout, prefix string, first, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, first+i)
		wg.Go(func() {
			_, err := protocol.Submit(l, framework.Request(ids[i], prefix, first+i, ""))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// waitAll waits until every run satisfies ok.
func waitAll(t *testing.T, l protocol.Layout, ids []string, within time.Duration, ok func(protocol.Status) bool) {
	t.Helper()
	if err := framework.WaitAll(l, ids, within, ok); err != nil {
		t.Fatal(err)
	}
}

// oneJobEach checks that every run has exactly one Job and the namespace
// no other.
func oneJobEach(t *testing.T, ns string, ids []string) {
	t.Helper()
	jobs, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, j := range jobs.Items {
		per[j.Labels[jobspec.LabelRun]]++
	}
	for _, id := range ids {
		if per[id] != 1 {
			t.Errorf("run %s has %d jobs", id, per[id])
		}
	}
	if len(jobs.Items) != len(ids) {
		t.Errorf("%d jobs for %d runs", len(jobs.Items), len(ids))
	}
}

var succeeded = phase(protocol.PhaseSucceeded, "")

// TestFakeNodeExitCodes: on a kwok node a Job's pod ends with the exit
// code it is given, and the agent reports it.
func TestFakeNodeExitCodes(t *testing.T) {
	needFakeNodes(t)
	h := newHarness(t, emptyProject(t))
	h.opts.Pod = fakeServerPod(t, h.ns)
	h.start()
	h.submit("ok", "")
	h.submit("bad", "")
	h.waitStatus("ok", phase(protocol.PhaseRunning, ""))
	h.waitStatus("bad", phase(protocol.PhaseRunning, ""))
	for id, code := range map[string]string{"ok": "0", "bad": "3"} {
		s, _ := protocol.ReadStatus(h.layout, id)
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, cluster.ExitCodeAnnotation, code)
		if _, err := env.Client.CoreV1().Pods(h.ns).Patch(t.Context(), s.Pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if s := h.waitStatus("ok", succeeded); s.ExitCode == nil || *s.ExitCode != 0 || s.Node == "" {
		t.Errorf("ok: %+v", s)
	}
	if s := h.waitStatus("bad", phase(protocol.PhaseFailed, "")); s.ExitCode == nil || *s.ExitCode != 3 {
		t.Errorf("bad: %+v", s)
	}
}

// TestBurstOf50: fifty requests written at once all run to success, one
// Job each.
func TestBurstOf50(t *testing.T) {
	needFakeNodes(t)
	h := newHarness(t, emptyProject(t))
	h.opts.Pod = fakeServerPod(t, h.ns)
	h.start()
	startEndingPods(t, h.ns)
	start := time.Now()
	ids := submitMany(t, h.layout, "burst", 1, 50)
	waitAll(t, h.layout, ids, 2*time.Minute, succeeded)
	t.Logf("50 runs requested, created, run and finished in %s", time.Since(start).Round(time.Millisecond))
	oneJobEach(t, h.ns, ids)
}

// agentProc is `agent run` as its own process, so a test can kill it.
type agentProc struct {
	t    *testing.T
	args []string
	url  string
	log  string
	cmd  *exec.Cmd
	// exited is closed when the started process has exited.
	exited chan struct{}
}

func newAgentProc(t *testing.T, pod *corev1.Pod, root string) *agentProc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := &agentProc{t: t, url: "http://" + addr, log: filepath.Join(t.TempDir(), "agent.log"), args: []string{
		"--kubeconfig", env.Kubeconfig, "--pod-name", pod.Name, "--pod-namespace", pod.Namespace,
		"--dir", root, "--instance", pod.Namespace,
		"run", "--listen", addr, "--log-format", "text", "--rescan", "2s",
	}}
	t.Cleanup(func() {
		if a.cmd != nil {
			a.signal(syscall.SIGKILL)
		}
		if t.Failed() || os.Getenv("MAGEKUBE_TEST_AGENT_LOG") != "" {
			data, _ := os.ReadFile(a.log)
			t.Logf("agent log:\n%s", data)
		}
	})
	return a
}

// runningAgent is an agent process on the kwok nodes of a new namespace
// (prefix), started and ready: its namespace, run directory and process.
func runningAgent(t *testing.T, prefix string) (string, protocol.Layout, *agentProc) {
	t.Helper()
	needFakeNodes(t)
	ns := env.Namespace(t, prefix)
	pod := fakeServerPod(t, ns)
	l := protocol.Layout{Root: t.TempDir()}
	a := newAgentProc(t, pod, l.Root)
	a.start()
	return ns, l, a
}

// start starts the agent and waits for /readyz.
func (a *agentProc) start() {
	a.t.Helper()
	logFile, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logFile.Close()
	a.cmd = exec.Command(agentBin(a.t), a.args...)
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	exited := make(chan struct{})
	a.exited = exited
	cmd := a.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(a.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			data, _ := os.ReadFile(a.log)
			a.t.Fatalf("agent exited before ready:\n%s", data)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.t.Fatal("agent not ready after 60s")
		}
	}
}

// signal sends sig to the agent (by PID) and waits for it to exit.
func (a *agentProc) signal(sig syscall.Signal) {
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		a.t.Errorf("agent (pid %d) still running 30s after %v", a.cmd.Process.Pid, sig)
	}
	a.cmd = nil
}

// TestAgentKilledWithRunsInFlight: SIGKILL with 20 runs Running; while it
// is down 10 of them finish and 5 new requests arrive. The next agent
// finishes all 25, with one Job each.
func TestAgentKilledWithRunsInFlight(t *testing.T) {
	ns, l, a := runningAgent(t, "kill")
	ids := submitMany(t, l, "inflight", 1, 20)
	waitAll(t, l, ids, time.Minute, phase(protocol.PhaseRunning, ""))
	a.signal(syscall.SIGKILL)

	// While no agent runs: half the blocks end, new requests come in.
	for _, id := range ids[:10] {
		s, _ := protocol.ReadStatus(l, id)
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, cluster.ExitCodeAnnotation)
		if _, err := env.Client.CoreV1().Pods(ns).Patch(t.Context(), s.Pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	late := submitMany(t, l, "late", 21, 5)
	for _, id := range late {
		if s, err := protocol.ReadStatus(l, id); err == nil {
			t.Fatalf("run %s has a status with no agent running: %+v", id, s)
		}
	}

	a.start()
	startEndingPods(t, ns)
	all := append(ids, late...)
	waitAll(t, l, all, 2*time.Minute, succeeded)
	oneJobEach(t, ns, all)
}

// TestAPIServerOutage: the API server is stopped for 20 s with runs in
// flight and requests arriving; the agent rides it out and every run
// ends once the API server is back, with one Job each.
func TestAPIServerOutage(t *testing.T) {
	if env.Cluster == nil {
		t.Skip("the API server of a cluster given by kubeconfig cannot be stopped")
	}
	ns, l, a := runningAgent(t, "outage")
	before := submitMany(t, l, "before", 1, 5)
	waitAll(t, l, before, time.Minute, phase(protocol.PhaseRunning, ""))

	if err := env.Cluster.StopComponent("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			if err := env.Cluster.StartComponent("kube-apiserver"); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restart)
	during := submitMany(t, l, "during", 6, 5)
	time.Sleep(20 * time.Second) // the outage itself
	select {
	case <-a.exited:
		t.Fatal("agent exited during the outage")
	default:
	}
	restart()

	startEndingPods(t, ns)
	all := append(before, during...)
	back := time.Now()
	waitAll(t, l, all, 3*time.Minute, succeeded)
	t.Logf("all runs ended %s after the API server came back", time.Since(back).Round(time.Millisecond))
	oneJobEach(t, ns, all)
	if resp, err := http.Get(a.url + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after the outage: %v %v", resp, err)
	}
}
