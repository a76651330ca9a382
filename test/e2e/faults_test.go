//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestMageFaults injects faults while real Mage (make demo's stack, with
// PostgreSQL) runs a pipeline of six k8s blocks, a chain and a fan-out
// (seed → three parts of 10 s each → merge → report), with the three
// parts in flight, then compares three views: Mage's block runs (its
// API), the agent's status.json files and the Jobs in the cluster. Each
// block run must have executed once (one run, attempt 1, one Job), every
// run be final, no Job be left running, and Mage's pipeline run be
// completed. The time from the fault to the pipeline's completion is
// logged for the README's table.
func TestMageFaults(t *testing.T) {
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	st := startStack(t, "faults")
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

	// run triggers pipeline, waits until its three parts run, injects
	// the fault, and checks the three views once Mage's run ends.
	run := func(t *testing.T, pipeline string, fault func(t *testing.T)) {
		writeDAG(t, project, pipeline, "k8s", blocks, upstream)
		id := mage.trigger(t, pipeline)
		waitFor(t, 3*time.Minute, "the three parts of "+pipeline+" to run", func() bool {
			mage.unstall(t, pipeline)
			running := 0
			for _, r := range magekubeRuns(t, shared, pipeline) {
				if r.Status.Phase == protocol.PhaseRunning && strings.Contains(r.Status.ID, "-part") {
					running++
				}
			}
			return running == 3
		}, diag)
		start := time.Now()
		fault(t)
		status := mage.waitRunWithin(t, id, 10*time.Minute, diag)
		t.Logf("fault → Mage's pipeline run %s: %s", status, time.Since(start).Round(time.Second))
		if status != "completed" {
			t.Fatalf("pipeline run %s: %s, want completed\n%s", pipeline, status, diag())
		}
		agree(t, ns, shared, pipeline, mage.blockRuns(t, id), len(blocks))
	}

	// The agent's process is killed; the kubelet restarts its container.
	t.Run("agent-killed", func(t *testing.T) {
		run(t, "fault_agent", func(t *testing.T) {
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
		run(t, "fault_api", func(t *testing.T) {
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
