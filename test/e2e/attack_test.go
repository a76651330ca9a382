//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestHostileBlock: a real block Job on kind, running as root like Mage's
// image, attacks the agent's directory on the shared volume (the block
// stand-in's --attack: a link planted at requests/.rejected with a forged
// duplicate request, another run's status.json rewritten to name a
// foreign Job, an unsealed success for that run, and its own run's key
// read from the runner to seal an early success). After it, and after an
// agent restart, every other run's outcome is its own, no foreign Job is
// gone, and the attacker's run ends as its own pod did.
func TestHostileBlock(t *testing.T) {
	opts := agentOptions(t, "hostile", "k8s_executor_config:\n  job_name_prefix: hostile\n  resource_limits: {memory: 64Mi}\n")
	l, ns := opts.Layout, opts.Pod.Namespace
	foreign, err := env.Client.BatchV1().Jobs(ns).Create(t.Context(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "db-migrate"},
		Spec: batchv1.JobSpec{Suspend: ptr(true), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: env.ServerImage}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := framework.StartAgent(opts, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })

	submit := func(id string, n int, command ...string) {
		t.Helper()
		cmd, _ := json.Marshal(command)
		req := fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":"/home/src/p","pipeline_uuid":"etl","block_uuid":"b","block_run_id":%d,"command":%s}`, id, n, cmd)
		if _, err := protocol.Submit(l, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	submit("status", 1, "/usr/local/bin/block", "--print", "ok")
	submit("victim", 2, "/usr/local/bin/block", "--sleep", "45s")
	waitRun(t, l, "status", func(s protocol.Status) bool { return s.Phase == protocol.PhaseSucceeded })
	victim := waitRun(t, l, "victim", func(s protocol.Status) bool { return s.Phase == protocol.PhaseRunning })

	submit("attacker", 3, "/usr/local/bin/block", "--attack", "/home/src/"+ns, "--victim", "victim",
		"--foreign", "db-migrate", "--foreign-namespace", ns, "--sleep", "8s", "--exit", "1")
	s := waitRun(t, l, "attacker", func(s protocol.Status) bool { return s.Phase.Terminal() })
	log, _ := os.ReadFile(l.RunFile("attacker", protocol.LogFile))
	t.Logf("the attacker's log:\n%s", log)
	if s.Phase != protocol.PhaseFailed || s.ExitCode == nil || *s.ExitCode != 1 {
		t.Errorf("the attacker's run ended %s (exit %v), not as its pod did (Failed, exit 1)", s.Phase, s.ExitCode)
	}
	if !strings.Contains(string(log), "attack: key: denied") {
		t.Errorf("the block read its runner's key")
	}
	if !strings.Contains(string(log), "attack: plant the link: done") || !strings.Contains(string(log), "attack: rewrite the victim's status: done") {
		t.Errorf("the attack did not run as planned, so the test proves nothing")
	}
	waitFor(t, time.Minute, "the forged duplicate to be rejected", func() bool {
		_, err := os.Lstat(filepath.Join(l.Requests(), "status.json"))
		return os.IsNotExist(err)
	}, func() string { return "" })
	if data, err := os.ReadFile(filepath.Join(l.Requests(), ".rejected-moved", "status.json")); err != nil || !strings.Contains(string(data), `"Succeeded"`) {
		t.Errorf("the forged request is not in the directory the agent opened at start: %q %v", data, err)
	}

	// A restart: the agent refuses the planted link, naming it; once an
	// operator removes it, the next agent judges every run from the
	// cluster.
	_ = stop()
	if _, err := framework.StartAgent(opts, time.Minute); err == nil || !strings.Contains(err.Error(), ".rejected") {
		t.Errorf("an agent started on the planted link: %v", err)
	}
	if err := os.Remove(filepath.Join(l.Requests(), ".rejected")); err != nil {
		t.Fatal(err)
	}
	stop, err = framework.StartAgent(opts, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	s = waitRun(t, l, "victim", func(s protocol.Status) bool { return s.Phase.Terminal() })
	if s.Phase != protocol.PhaseSucceeded || s.Job != victim.Job || s.Namespace != ns {
		t.Errorf("the victim ended %s on Job %s/%s; its own Job is %s", s.Phase, s.Namespace, s.Job, victim.Job)
	}
	got, err := env.Client.BatchV1().Jobs(ns).Get(t.Context(), "db-migrate", metav1.GetOptions{})
	if err != nil || got.UID != foreign.UID || got.DeletionTimestamp != nil {
		t.Errorf("the foreign Job was touched: %v", err)
	}
}
