//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestMageFaults injects faults while real Mage (make demo's stack, with
// PostgreSQL) runs a pipeline of six k8s blocks, a chain and a fan-out
// (seed → three parts of 10 s each → merge → report), with the three
// parts in flight, then compares three views: Mage's block runs (its
// API), the agent's status.json files and the Jobs in the cluster. Each
// block run must have executed once (one run, attempt 1, one Job), every
// run be final, no Job be left running, and Mage's pipeline run end as
// the fault allows. The time from the fault to the pipeline run's end is
// logged for the README's table. The stack runs on the first worker
// (its Jobs inherit that), so the second can be lost.
func TestMageFaults(t *testing.T) {
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	workers := workerNodes(t)
	home, away := workers[0], workers[1]
	st := startStackWith(t, "faults", false, pinTo(home))
	ns, shared, mage, diag := st.ns, st.shared, st.mage, st.diag

	project := filepath.Join(shared, "default_repo")
	blocks := []block{{"seed", "data_loader", "print('seed')"}}
	upstream := map[string][]string{}
	var parts []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("part%d", i)
		blocks = append(blocks, block{name, "transformer", "import time\n    time.sleep(10)\n    print('" + name + "')"})
		upstream[name] = []string{"seed"}
		parts = append(parts, name)
	}
	blocks = append(blocks, block{"merge", "transformer", "print('merge')"}, block{"report", "data_exporter", "print('report')"})
	upstream["merge"] = parts

	// run triggers pipeline, waits until the pods of its three parts
	// run, injects the fault, and returns Mage's pipeline run, how it
	// ended, and when, from the fault.
	run := func(t *testing.T, m *mageAPI, ns, pipeline string, fault func(t *testing.T)) (int, string, time.Duration) {
		id := m.trigger(t, pipeline)
		waitFor(t, 3*time.Minute, "the three parts of "+pipeline+" to run", func() bool {
			m.unstall(t, pipeline)
			return runningJobPods(t, ns) == 3
		}, diag)
		start := time.Now()
		fault(t)
		status := m.waitRunWithin(t, id, 10*time.Minute, diag)
		took := time.Since(start).Round(time.Second)
		t.Logf("fault → Mage's pipeline run %s: %s", status, took)
		return id, status, took
	}
	completes := func(t *testing.T, pipeline string, fault func(t *testing.T)) {
		writeDAG(t, project, pipeline, "k8s", blocks, upstream)
		id, status, _ := run(t, mage, ns, pipeline, fault)
		if status != "completed" {
			t.Fatalf("pipeline run %s: %s, want completed\n%s", pipeline, status, diag())
		}
		agree(t, ns, shared, pipeline, mage.blockRuns(t, id), len(blocks))
	}

	// The agent's process is killed; the kubelet restarts its container.
	t.Run("agent-killed", func(t *testing.T) {
		completes(t, "fault_agent", func(t *testing.T) {
			pod := magePod(t, ns)
			p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			restarts, _ := agentContainer(p)
			// The node has no crictl: the agent is the process of the pod's
			// cgroup (its UID, with underscores under systemd) running
			// `agent run`.
			uid := string(p.UID)
			out := onNode(t, p.Spec.NodeName, fmt.Sprintf(`for p in /proc/[0-9]*; do
  case "$(tr '\0' ' ' <$p/cmdline 2>/dev/null)" in
    "/usr/local/bin/agent run"*) grep -qE '%s|%s' $p/cgroup 2>/dev/null && kill -9 ${p#/proc/} && echo killed ${p#/proc/} ;;
  esac
done`, uid, strings.ReplaceAll(uid, "-", "_")))
			if !strings.Contains(out, "killed") {
				t.Fatalf("no agent process of pod %s on node %s", pod, p.Spec.NodeName)
			}
			killed := time.Now()
			waitFor(t, 3*time.Minute, "the agent container to restart", func() bool {
				p, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
				if err != nil {
					return false
				}
				n, running := agentContainer(p)
				return n > restarts && running
			}, diag)
			t.Logf("agent killed → its container running again: %s", time.Since(killed).Round(time.Second))
		})
	})

	// The API server is down 30 s: its static pod's manifest leaves the
	// kubelet's directory and comes back.
	t.Run("apiserver-down", func(t *testing.T) {
		completes(t, "fault_api", func(t *testing.T) {
			cp := controlPlaneNode(t)
			onNode(t, cp, "mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kube-apiserver.yaml")
			stopped := time.Now()
			defer func() {
				onNode(t, cp, "test -f /etc/kubernetes/manifests/kube-apiserver.yaml || mv /etc/kubernetes/kube-apiserver.yaml /etc/kubernetes/manifests/")
			}()
			time.Sleep(30 * time.Second)
			onNode(t, cp, "mv /etc/kubernetes/kube-apiserver.yaml /etc/kubernetes/manifests/")
			waitFor(t, 3*time.Minute, "the API server to answer again", func() bool {
				_, err := env.Client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				return err == nil
			}, func() string { return "" })
			t.Logf("API server stopped → answering again: %s", time.Since(stopped).Round(time.Second))
		})
	})

	// The Mage pod is deleted, the agent sidecar with it; the Deployment
	// makes a new one. Mage's own recovery decides: its scheduler finds
	// the parts' block runs running with no job of its own, resets them
	// and runs them again; the trigger takes the attempts it finds (still
	// going, or ended meanwhile), as Mage's own executor takes the Job
	// it finds, and the new agent adopts their Jobs. The same fault with
	// Mage's own executor, on a stack of its own, once, side by side.
	deleteMagePod := func(st *stack) func(t *testing.T) {
		return func(t *testing.T) {
			pod := magePod(t, st.ns)
			if err := env.Client.CoreV1().Pods(st.ns).Delete(t.Context(), pod, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			deleted := time.Now()
			waitFor(t, 3*time.Minute, "the Mage pod "+pod+" to be gone", func() bool {
				_, err := env.Client.CoreV1().Pods(st.ns).Get(t.Context(), pod, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			}, st.diag)
			rollout(t, st.ns, "mage", st.diag)
			relogin(t, st.mage, "Mage's API in the new pod to answer a login", st.diag)
			t.Logf("Mage pod deleted → the new pod's API answering: %s", time.Since(deleted).Round(time.Second))
		}
	}
	t.Run("mage-pod-deleted", func(t *testing.T) {
		completes(t, "fault_mage", deleteMagePod(st))
		logs := mageLog(t, ns, "app.kubernetes.io/name=mage", "mage")
		if !strings.Contains(logs, "magekube run block-") {
			t.Errorf("the new Mage pod's log shows no block run it followed:\n%.3000s", logs)
		}
	})
	t.Run("mage-pod-deleted-own-executor", func(t *testing.T) {
		own := startStackWith(t, "faults-own", true, pinTo(home))
		writeDAG(t, filepath.Join(own.shared, "default_repo"), "fault_mage", "k8s", blocks, upstream)
		before := podsCreated(t, own.ns)
		id, status, _ := run(t, own.mage, own.ns, "fault_mage", deleteMagePod(own))
		if status != "completed" {
			t.Fatalf("Mage's own executor: pipeline run %s, want completed\n%s", status, own.diag())
		}
		// Mage's own Jobs are deleted once they end; the Job controller's
		// events outlive them: one pod per Job, one Job per block run.
		created := podsCreated(t, own.ns)
		for job, n := range created {
			if n-before[job] != 1 {
				t.Errorf("Mage's own executor: Job %s created %d pods, want 1", job, n-before[job])
			}
		}
		if len(created)-len(before) != len(blocks) {
			t.Errorf("Mage's own executor: %d Jobs, want %d", len(created)-len(before), len(blocks))
		}
		for _, b := range own.mage.blockRuns(t, id) {
			if b.Status != "completed" {
				t.Errorf("Mage's own executor: block run %s: %s", b.Block, b.Status)
			}
		}
	})

	// The second worker is lost (its container stopped) while one part's
	// pod runs there: Kubernetes marks the node unreachable after its
	// 50 s grace, evicts the pod after the agent's --node-lost-after
	// (30 s), and the run fails as NodeLost; Mage's block run fails with
	// that reason, nothing downstream runs, and Mage's pipeline run fails.
	// The node comes back for the tests that follow.
	t.Run("node-lost", func(t *testing.T) {
		pipeline := "fault_node"
		writeDAG(t, project, pipeline, "k8s", blocks, upstream)
		meta := filepath.Join(project, "pipelines", pipeline, "metadata.yaml")
		data, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		pinned := strings.Replace(string(data), "- {uuid: part0, ", "- {uuid: part0, executor_config: {pod: {node_selector: {kubernetes.io/hostname: "+away+"}}}, ", 1)
		if err := os.WriteFile(meta, []byte(pinned), 0o666); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if out, err := exec.Command("docker", "start", away).CombinedOutput(); err != nil {
				t.Errorf("docker start %s: %v\n%s", away, err, out)
			}
			waitFor(t, 3*time.Minute, "node "+away+" Ready again", func() bool {
				n, err := env.Client.CoreV1().Nodes().Get(t.Context(), away, metav1.GetOptions{})
				if err != nil {
					return false
				}
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady {
						return c.Status == corev1.ConditionTrue
					}
				}
				return false
			}, func() string { return "" })
		}()
		id, status, took := run(t, mage, ns, pipeline, func(t *testing.T) {
			if out, err := exec.Command("docker", "stop", "--time", "0", away).CombinedOutput(); err != nil {
				t.Fatalf("docker stop %s: %v\n%s", away, err, out)
			}
		})
		if status != "failed" {
			t.Fatalf("pipeline run %s: %s, want failed\n%s", pipeline, status, diag())
		}
		if took > 4*time.Minute {
			t.Errorf("the lost node's run ended %s after the fault, want within 50 s + 30 s + a margin", took)
		}
		states := map[string]string{}
		for _, b := range mage.blockRuns(t, id) {
			states[b.Block] = b.Status
		}
		for block, want := range map[string]string{"seed": "completed", "part0": "failed", "part1": "completed", "part2": "completed"} {
			if states[block] != want {
				t.Errorf("Mage's block run %s: %q, want %s (all: %v)", block, states[block], want, states)
			}
		}
		for _, r := range magekubeRuns(t, shared, pipeline) {
			switch {
			case r.Block == "part0":
				if r.Status.Phase != protocol.PhaseFailed || r.Status.Reason != protocol.ReasonNodeLost || !strings.Contains(r.Status.Message, away) {
					t.Errorf("part0's run: %s %s %q, want Failed NodeLost naming %s", r.Status.Phase, r.Status.Reason, r.Status.Message, away)
				}
			case r.Block == "merge" || r.Block == "report":
				t.Errorf("run %s of a block downstream of the lost one", r.Status.ID)
			case r.Status.Phase != protocol.PhaseSucceeded:
				t.Errorf("run %s: %s %s", r.Status.ID, r.Status.Phase, r.Status.Reason)
			}
		}
		if logs := mage.runLogs(t, pipeline, id); !strings.Contains(logs, "NodeLost") {
			t.Errorf("Mage's logs of pipeline run %d lack the reason NodeLost: %.3000s", id, logs)
		}
	})

	// The project volume is full for 30 s while the three parts end:
	// every final status is written once space returns, and Mage's block
	// runs end as the blocks did (the agent's, the Job's and Mage's
	// views agree, each block run executed once).
	t.Run("volume-full", func(t *testing.T) {
		if !env.SharedFS {
			t.Skip("the project volume is not a tmpfs of its own (framework.SetupKind mounts one as root)")
		}
		pipeline := "fault_volume"
		writeDAG(t, project, pipeline, "k8s", blocks, upstream)
		id, status, _ := run(t, mage, ns, pipeline, func(t *testing.T) {
			free := fill(t, env.SharedDir)
			filled := time.Now()
			time.Sleep(30 * time.Second)
			unfill(t, env.SharedDir)
			t.Logf("volume full (%d MiB filled) for %s", free>>20, time.Since(filled).Round(time.Second))
		})
		waitFor(t, 2*time.Minute, "every run of "+pipeline+" final and no Job of it running", func() bool {
			return settled(t, ns, shared, pipeline)
		}, diag)
		runs := magekubeRuns(t, shared, pipeline)
		mageSays := map[string]string{}
		for _, b := range mage.blockRuns(t, id) {
			mageSays[b.Block] = b.Status
		}
		outcomes := map[string]int{}
		for _, r := range runs {
			want := map[protocol.Phase]string{protocol.PhaseSucceeded: "completed", protocol.PhaseFailed: "failed", protocol.PhaseCancelled: "cancelled"}[r.Status.Phase]
			got := mageSays[r.Block]
			// Once a block fails, Mage fails the pipeline run and cancels
			// the block runs it still sees running: such a block run is
			// cancelled in Mage whatever its run's end, which Mage had not
			// taken yet (its own executor's the same).
			if got == "cancelled" && status == "failed" {
				t.Logf("block %s: cancelled by Mage as its pipeline run failed; its run ended %s %s", r.Block, r.Status.Phase, r.Status.Reason)
			} else if got != want {
				t.Errorf("block %s: Mage says %q, the agent %s %s %q", r.Block, got, r.Status.Phase, r.Status.Reason, r.Status.Message)
			}
			if r.Status.Attempts > 1 || strings.Contains(r.Status.ID, "-a2") {
				t.Errorf("run %s: %d attempts, want 1", r.Status.ID, r.Status.Attempts)
			}
			outcomes[string(r.Status.Phase)+" "+r.Status.Reason]++
			if r.Status.Phase == protocol.PhaseFailed {
				t.Logf("run %s: %s %q", r.Status.ID, r.Status.Reason, r.Status.Message)
			}
		}
		t.Logf("pipeline run %s; the runs: %v", status, outcomes)
	})
}

// workerNodes are the cluster's workers, by name.
func workerNodes(t *testing.T) []string {
	t.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "!node-role.kubernetes.io/control-plane"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	if len(names) < 2 {
		t.Skipf("the node faults need two workers; the cluster has %v", names)
	}
	return names
}

// pinTo is a kustomize patch that places every Deployment on node.
func pinTo(node string) string {
	return fmt.Sprintf(`- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /spec/template/spec/nodeSelector
      value: {kubernetes.io/hostname: %s}`, node)
}

// runningJobPods counts the running pods of Jobs in ns.
func runningJobPods(t *testing.T, ns string) int {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "job-name", FieldSelector: "status.phase=Running"})
	if err != nil {
		return 0
	}
	return len(pods.Items)
}

// podsCreated: per Job in ns, the pods the Job controller created (its
// SuccessfulCreate events, which outlive Mage's deleted Jobs).
func podsCreated(t *testing.T, ns string) map[string]int {
	t.Helper()
	evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=SuccessfulCreate"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range evs.Items {
		out[e.InvolvedObject.Name] += max(int(e.Count), 1)
	}
	return out
}

// fill takes every free byte of the filesystem at dir (one preallocated
// file, grown in ever smaller steps until the smallest is refused: a
// tmpfs may refuse less than statfs says is free), and returns how many.
func fill(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, ".fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	for step := int64(64 << 20); step >= 4096; step /= 4 {
		for {
			err := syscall.Fallocate(int(f.Fd()), 0, size, step)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", dir, err)
			}
			size += step
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".fill-probe"), make([]byte, 8192), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a write to the filled volume: %v, want ENOSPC", err)
	}
	return size
}

func unfill(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{".fill", ".fill-probe"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
	}
}

// settled: every run of pipeline final, and no Job in ns running.
func settled(t *testing.T, ns, shared, pipeline string) bool {
	for _, r := range magekubeRuns(t, shared, pipeline) {
		if !r.Status.Phase.Terminal() {
			return false
		}
	}
	jobs, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, j := range jobs.Items {
		if j.Status.Active > 0 {
			return false
		}
	}
	return true
}

// agree compares Mage's block runs of one pipeline run, the agent's runs
// and the Jobs: each block run executed once, everything final.
func agree(t *testing.T, ns, shared, pipeline string, blockRuns []mageBlockRun, want int) {
	t.Helper()
	if len(blockRuns) != want {
		t.Errorf("Mage lists %d block runs, want %d", len(blockRuns), want)
	}
	for _, b := range blockRuns {
		if b.Status != "completed" {
			t.Errorf("Mage's block run %s: %s", b.Block, b.Status)
		}
	}
	// Mage's run completes when the blocks' own `mage run` record it; the
	// Jobs' containers exit, and the agent records them, a moment later.
	waitFor(t, 2*time.Minute, "every run of "+pipeline+" final and no Job of it running", func() bool {
		return settled(t, ns, shared, pipeline)
	}, func() string { return podDiagnostics(t, ns) })
	runs := magekubeRuns(t, shared, pipeline)
	if len(runs) != want {
		t.Errorf("%d magekube runs for %s, want %d (one per block run)", len(runs), pipeline, want)
	}
	jobs, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Status.Phase != protocol.PhaseSucceeded {
			t.Errorf("run %s: %s %s %q", r.Status.ID, r.Status.Phase, r.Status.Reason, r.Status.Message)
		}
		if r.Status.Attempts > 1 || strings.Contains(r.Status.ID, "-a2") {
			t.Errorf("run %s: %d attempts, want 1", r.Status.ID, r.Status.Attempts)
		}
		n := 0
		for _, j := range jobs.Items {
			if j.Labels["magekube.io/run"] == r.Status.ID {
				n++
				if j.Status.Active > 0 {
					t.Errorf("Job %s still running", j.Name)
				}
			}
		}
		if n != 1 {
			t.Errorf("run %s: %d Jobs, want 1", r.Status.ID, n)
		}
	}
}

func magePod(t *testing.T, ns string) string {
	t.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mage"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the Mage pod: %v, %d pods", err, len(pods.Items))
	}
	return pods.Items[0].Name
}

// agentContainer: the agent container's restarts, and whether it runs.
func agentContainer(p *corev1.Pod) (int32, bool) {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "magekube-agent" {
			return s.RestartCount, s.State.Running != nil
		}
	}
	return -1, false
}

// controlPlaneNode is the kind control plane's node (its container's name).
func controlPlaneNode(t *testing.T) string {
	t.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/control-plane"})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("the control-plane node: %v", err)
	}
	return nodes.Items[0].Name
}

// onNode runs a shell command in a kind node's container.
func onNode(t *testing.T, node, script string) string {
	t.Helper()
	out, err := exec.Command("docker", "exec", node, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("on node %s: %s: %v\n%s", node, script, err, out)
	}
	return string(out)
}
