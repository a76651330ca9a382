//go:build e2e

package e2e

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestAgentOutcomes runs the agent against real nodes and checks that
// every outcome a Mage user meets comes back in status.json with the
// right phase, reason and exit code.
func TestAgentOutcomes(t *testing.T) {
	layout := startAgent(t, "outcomes", "k8s_executor_config:\n  job_name_prefix: out\n  resource_limits: {memory: 64Mi}\n", nil)
	ns := filepath.Base(layout.Root) // the run directory is named after the namespace

	type outcome struct {
		phase  protocol.Phase
		reason string
		exit   int
	}
	cases := map[string]struct {
		extra string
		want  outcome
	}{
		"ok":       {`"command":["/usr/local/bin/block","--print","fine"]`, outcome{protocol.PhaseSucceeded, protocol.ReasonCompleted, 0}},
		"exit3":    {`"command":["/usr/local/bin/block","--exit","3"]`, outcome{protocol.PhaseFailed, protocol.ReasonBackoffLimitExceeded, 3}},
		"oom":      {`"command":["/usr/local/bin/block","--alloc-mib","256","--sleep","5s"]`, outcome{protocol.PhaseFailed, protocol.ReasonOOMKilled, 137}},
		"retried":  {`"command":["/usr/local/bin/block","--fail-first-attempt","/home/src/` + ns + `/runs/retried"],"executor_config":{"job":{"backoff_limit":1}}`, outcome{protocol.PhaseSucceeded, protocol.ReasonCompleted, 0}},
		"deadline": {`"command":["/usr/local/bin/block","--sleep","60s"],"executor_config":{"job":{"active_deadline_seconds":3}}`, outcome{protocol.PhaseFailed, protocol.ReasonDeadlineExceeded, -1}},
	}
	n := 100
	for id, tc := range cases {
		n++
		req := fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":"/home/src/p","pipeline_uuid":"etl","block_uuid":"b","block_run_id":%d,%s}`, id, n, tc.extra)
		if _, err := protocol.Submit(layout, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	// A missing image stays Pending with the kubelet's reason.
	if _, err := protocol.Submit(layout, []byte(`{"apiVersion":"magekube/v1","id":"noimage","kind":"block","project_dir":"/home/src/p","pipeline_uuid":"etl","block_uuid":"b","block_run_id":200,
	  "executor_config":{"container":{"image":"magekube/does-not-exist:v0","image_pull_policy":"Never"}}}`)); err != nil {
		t.Fatal(err)
	}
	for id, tc := range cases {
		t.Run(id, func(t *testing.T) {
			s := waitRun(t, layout, id, func(s protocol.Status) bool { return s.Phase.Terminal() })
			if s.Phase != tc.want.phase || s.Reason != tc.want.reason {
				t.Errorf("%s: %s/%s %q, want %s/%s", id, s.Phase, s.Reason, s.Message, tc.want.phase, tc.want.reason)
			}
			if tc.want.exit >= 0 && (s.ExitCode == nil || *s.ExitCode != tc.want.exit) {
				t.Errorf("%s: exit code %v, want %d", id, s.ExitCode, tc.want.exit)
			}
			if id == "retried" && s.Attempts != 2 {
				t.Errorf("retried: %d attempts, want 2", s.Attempts)
			}
		})
	}
	s := waitRun(t, layout, "noimage", func(s protocol.Status) bool { return s.Reason == protocol.ReasonErrImageNeverPull })
	if s.Phase != protocol.PhasePending || !strings.Contains(s.Message, "does-not-exist") {
		t.Errorf("noimage: %+v", s)
	}
}

// startAgent runs an agent in this process for one test: a namespace,
// the server pod, a project with the given metadata.yaml, and the run
// directory on the shared volume. with, when set, adjusts the options.
func startAgent(t *testing.T, prefix, metadata string, with func(*dispatch.Options)) protocol.Layout {
	t.Helper()
	opts := agentOptions(t, prefix, metadata)
	if with != nil {
		with(&opts)
	}
	stop, err := framework.StartAgent(opts, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	return opts.Layout
}

// agentOptions makes what startAgent starts an agent on: the namespace,
// the server pod, the project and the run directory.
func agentOptions(t *testing.T, prefix, metadata string) dispatch.Options {
	t.Helper()
	ns := env.Namespace(t, prefix)
	shared := sharedDir(t)
	root := filepath.Join(shared, ns)
	if err := os.MkdirAll(root, 0o777); err != nil {
		t.Fatal(err)
	}
	pod, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), serverPod(ns, shared), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	if err := framework.Project(project, metadata); err != nil {
		t.Fatal(err)
	}
	opts := framework.AgentOptions(protocol.Layout{Root: root}, env.Client, pod, project, ns)
	opts.Rescan = 5 * time.Second
	opts.Builder.Settings.JobDir = "/home/src/" + ns
	opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return opts
}

func waitRun(t *testing.T, l protocol.Layout, id string, ok func(protocol.Status) bool) protocol.Status {
	t.Helper()
	s, err := framework.WaitStatus(l, id, 3*time.Minute, ok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
