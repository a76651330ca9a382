//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/framework"
)

// The attacks in this file are what a block can do: every Job pod mounts
// the shared volume read-write, so it can plant links, rename directories
// and rewrite files there. Each runs against the agent as its own process
// and the real API server, with a restart where the attack waits for one.
// The test writes the volume as root, the strongest writer a Mage image
// (which runs as root) gives a block.

// endRun makes the run's kwok pod exit with code.
func endRun(t *testing.T, l protocol.Layout, ns, id string, code int) {
	t.Helper()
	s, err := protocol.ReadStatus(l, id)
	if err != nil || s.Pod == "" {
		t.Fatalf("run %s has no pod yet: %+v %v", id, s, err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"%d"}}}`, cluster.ExitCodeAnnotation, code)
	if _, err := env.Client.CoreV1().Pods(ns).Patch(t.Context(), s.Pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes path atomically, as a writer of the volume would.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAttackRejectedLink: a block moves requests/.rejected away, plants a
// link to another run's directory at its name, and drops a duplicate
// request named status.json holding a forged status: the agent's
// rejection must not land on that run's status.json. An agent started on
// the planted link refuses to start, naming it.
func TestAttackRejectedLink(t *testing.T) {
	ns, l, a := runningAgent(t, "attack-link")
	submitMany(t, l, "victim", 1, 1)
	if _, err := protocol.Submit(l, []byte(`{"apiVersion":"magekube/v1","id":"status","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"x","block_run_id":9}`)); err != nil {
		t.Fatal(err)
	}
	waitAll(t, l, []string{"victim-1", "status"}, time.Minute, phase(protocol.PhaseRunning, ""))

	rejected := filepath.Join(l.Requests(), ".rejected")
	if err := os.Rename(rejected, rejected+"-moved"); err != nil && !os.IsNotExist(err) {
		t.Fatal(err) // (an agent that makes it at its first rejection has none yet)
	}
	if err := os.Symlink("../runs/victim-1", rejected); err != nil {
		t.Fatal(err)
	}
	forged := `{"apiVersion":"magekube/v1","id":"victim-1","phase":"Succeeded","exit_code":0}`
	writeFile(t, filepath.Join(l.Requests(), "status.json"), forged)
	waitFor(t, "the duplicate request to be rejected", func() bool {
		_, err := os.Lstat(filepath.Join(l.Requests(), "status.json"))
		return os.IsNotExist(err)
	})
	if s, err := protocol.ReadStatus(l, "victim-1"); err != nil || s.Phase != protocol.PhaseRunning {
		t.Errorf("the victim's status after the attack: %+v %v", s, err)
	}
	if data, err := os.ReadFile(filepath.Join(rejected+"-moved", "status.json")); err != nil || string(data) != forged {
		t.Errorf("the rejected request is not in the directory the agent opened: %q %v", data, err)
	}

	a.signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, agentBin(t), a.args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), rejected) || !strings.Contains(string(out), "symbolic link is never followed") {
		t.Errorf("an agent on a planted link: err %v, output:\n%s", err, out)
	}

	// The operator removes the link; the next agent finishes the runs.
	if err := os.Remove(rejected); err != nil {
		t.Fatal(err)
	}
	a.start()
	endRun(t, l, ns, "victim-1", 0)
	endRun(t, l, ns, "status", 0)
	waitAll(t, l, []string{"victim-1", "status"}, time.Minute, succeeded)
}

// TestAttackRewrittenStatus: while the agent is down, a block rewrites
// one run's status.json to name a Job in another namespace that magekube
// never made, and adds a cancel file; it rewrites another run's to name a
// third run's completed Job. The restarted agent cancels the first run by
// deleting its own Job only, and judges the second from its own Job.
func TestAttackRewrittenStatus(t *testing.T) {
	needFakeNodes(t)
	ns := env.Namespace(t, "attack-status")
	other := env.Namespace(t, "attack-other")
	pod := fakeServerPod(t, ns)
	foreign, err := env.Client.BatchV1().Jobs(other).Create(t.Context(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "db-migrate"},
		Spec: batchv1.JobSpec{
			Suspend: ptr(true),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "migrate", Image: "migrate:1"}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := protocol.Layout{Root: t.TempDir()}
	a := newAgentProc(t, pod, l.Root)
	a.start()
	ids := submitMany(t, l, "r", 1, 3) // r-1 is cancelled, r-2 pointed at r-3's Job
	waitAll(t, l, ids, time.Minute, phase(protocol.PhaseRunning, ""))
	endRun(t, l, ns, "r-3", 0)
	done := waitStatusOf(t, l, "r-3", succeeded)
	own, _ := protocol.ReadStatus(l, "r-2")

	a.signal(syscall.SIGKILL)
	status := func(id, job, namespace string) string {
		return fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"phase":"Running","job":%q,"namespace":%q,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`, id, job, namespace)
	}
	writeFile(t, l.RunFile("r-1", protocol.StatusFile), status("r-1", "db-migrate", other))
	writeFile(t, l.RunFile("r-2", protocol.StatusFile), status("r-2", done.Job, ns))
	writeFile(t, l.RunFile("r-1", protocol.CancelFile), "")
	a.start()

	if s := waitStatusOf(t, l, "r-1", phase(protocol.PhaseCancelled, "")); s.Job == "db-migrate" || s.Namespace != ns {
		t.Errorf("r-1 ended naming the planted Job: %+v", s)
	}
	got, err := env.Client.BatchV1().Jobs(other).Get(t.Context(), "db-migrate", metav1.GetOptions{})
	if err != nil || got.UID != foreign.UID || got.DeletionTimestamp != nil {
		t.Errorf("the foreign Job was touched: %+v %v", got, err)
	}
	time.Sleep(5 * time.Second) // two rescans of the agent
	if s, _ := protocol.ReadStatus(l, "r-2"); s.Phase.Terminal() {
		t.Errorf("r-2 ended from another run's Job: %+v", s)
	}
	endRun(t, l, ns, "r-2", 0)
	if s := waitStatusOf(t, l, "r-2", succeeded); s.Job != own.Job {
		t.Errorf("r-2 ended on Job %s, its own is %s", s.Job, own.Job)
	}
}

func waitStatusOf(t *testing.T, l protocol.Layout, id string, ok func(protocol.Status) bool) protocol.Status {
	t.Helper()
	waitAll(t, l, []string{id}, time.Minute, ok)
	s, err := protocol.ReadStatus(l, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// TestQueueCaps: runs past --max-queued, or whose request would take the
// queued requests past --max-queued-bytes, fail QueueFull at once with a
// message naming the cap; runs that fit wait as usual.
func TestQueueCaps(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.opts.MaxInflight, h.opts.MaxQueued, h.opts.MaxQueuedBytes = 1, 2, 64<<10
	h.start()
	h.submit("slot", "")
	h.waitStatus("slot", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	big := `,"variables":{"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	h.submit("q1", "")
	h.waitStatus("q1", phase(protocol.PhaseQueued, ""))
	h.submit("big", big)
	s := h.waitStatusWithin("big", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonQueueFull))
	if !strings.Contains(s.Message, "--max-queued-bytes 65536") {
		t.Errorf("message %q does not name the cap", s.Message)
	}
	h.submit("q2", "")
	h.waitStatus("q2", phase(protocol.PhaseQueued, ""))
	h.submit("q3", "")
	s = h.waitStatusWithin("q3", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonQueueFull))
	if !strings.Contains(s.Message, "--max-queued 2") {
		t.Errorf("message %q does not name the cap", s.Message)
	}
}

// TestForeignJobOfTheRunsNameIsNotAdopted: a Job someone else made under
// the name a run's Job will have, even with the run's annotation, is a
// name collision, never adopted (and so never tracked or deleted): only
// the labels the agent sets itself make a Job the run's.
func TestForeignJobOfTheRunsNameIsNotAdopted(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	req := framework.Request("pre", "load", 4242, "")
	parsed, err := protocol.ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := h.opts.Builder.Build(h.opts.Pod, parsed)
	if err != nil {
		t.Fatal(err)
	}
	foreign := want.DeepCopy()
	foreign.Labels = map[string]string{"app": "not-magekube"}
	foreign.Spec.Template.Labels = nil
	foreign.Spec.Suspend = ptr(true)
	if _, err := env.Client.BatchV1().Jobs(h.ns).Create(t.Context(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.start()
	if _, err := protocol.Submit(h.layout, req); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("pre", phase(protocol.PhaseFailed, protocol.ReasonNameCollision))
	if _, err := env.Client.BatchV1().Jobs(h.ns).Get(t.Context(), want.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign Job: %v", err)
	}
}

// TestJobGoneWhileAgentDown: a run's Job removed while no agent ran (its
// TTL, or someone) is not created again by the next agent: the run had
// started, so its block may have run; the run ends JobDeleted. A run that
// was only queued is created as usual.
func TestJobGoneWhileAgentDown(t *testing.T) {
	ns, l, a := runningAgent(t, "gone")
	ids := submitMany(t, l, "gone", 1, 1)
	s := waitStatusOf(t, l, ids[0], phase(protocol.PhaseRunning, ""))
	a.signal(syscall.SIGKILL)
	background := metav1.DeletePropagationBackground
	if err := env.Client.BatchV1().Jobs(ns).Delete(t.Context(), s.Job, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Job to be gone", func() bool {
		_, err := env.Client.BatchV1().Jobs(ns).Get(t.Context(), s.Job, metav1.GetOptions{})
		return err != nil
	})
	a.start()
	got := waitStatusOf(t, l, ids[0], phase(protocol.PhaseFailed, protocol.ReasonJobDeleted))
	if !strings.Contains(got.Message, "not created again") {
		t.Errorf("message %q", got.Message)
	}
	time.Sleep(3 * time.Second) // a rescan
	list, err := env.Client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("Jobs after the restart: %d (%v), want none", len(list.Items), err)
	}
}
