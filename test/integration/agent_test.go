//go:build integration

package integration

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// harness is one agent, in this process, against the real API server.
type harness struct {
	t      *testing.T
	ns     string
	layout protocol.Layout
	opts   dispatch.Options
	stop   func()
}

func newHarness(t *testing.T, project string) *harness {
	t.Helper()
	ns := env.Namespace(t, "agent")
	created, err := framework.CreateServerPod(t.Context(), env.Client, framework.PodOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ns: ns, layout: protocol.Layout{Root: t.TempDir()}}
	h.opts = framework.AgentOptions(h.layout, env.Client, created, project, ns)
	h.opts.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start runs an agent until the test ends or stop is called.
func (h *harness) start() {
	h.t.Helper()
	stop, err := framework.StartAgent(h.opts, 30*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.stop = func() {
		if err := stop(); err != nil {
			h.t.Errorf("agent: %v", err)
		}
	}
	h.t.Cleanup(h.stop)
}

func (h *harness) submit(id string, extra string) {
	h.t.Helper()
	if _, err := protocol.Submit(h.layout, framework.Request(id, "load", len(id)*1000+int(id[len(id)-1]), extra)); err != nil {
		h.t.Fatal(err)
	}
}

// waitStatus waits until the run's status satisfies ok.
func (h *harness) waitStatus(id string, ok func(protocol.Status) bool) protocol.Status {
	h.t.Helper()
	return h.waitStatusWithin(id, 60*time.Second, ok)
}

// waitStatusWithin waits at most within.
func (h *harness) waitStatusWithin(id string, within time.Duration, ok func(protocol.Status) bool) protocol.Status {
	h.t.Helper()
	s, err := framework.WaitStatus(h.layout, id, within, ok)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

var phase = framework.Phase

func (h *harness) jobs(id string) int {
	h.t.Helper()
	list, err := env.Client.BatchV1().Jobs(h.ns).List(h.t.Context(), metav1.ListOptions{LabelSelector: jobspec.LabelRun + "=" + id})
	if err != nil {
		h.t.Fatal(err)
	}
	return len(list.Items)
}

func emptyProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := framework.Project(dir, "k8s_executor_config:\n  job_name_prefix: it\n"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAgentDispatchesAndDiagnosesUnschedulable: a request becomes one
// Job; with no node in the cluster its pod is Unschedulable, and the
// status says so in the scheduler's words.
func TestAgentDispatchesAndDiagnosesUnschedulable(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	h.submit("r1", "")
	s := h.waitStatus("r1", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	if !strings.Contains(s.Message, "nodes are available") && !strings.Contains(s.Message, "no nodes available") {
		t.Errorf("message %q is not the scheduler's", s.Message)
	}
	if s.Job != "mage-it-block-2049" || s.Namespace != h.ns || h.jobs("r1") != 1 {
		t.Errorf("status %+v, %d jobs", s, h.jobs("r1"))
	}
	if _, err := os.Stat(h.layout.RunFile("r1", protocol.RequestFile)); err != nil {
		t.Errorf("request not claimed: %v", err)
	}
}

// TestAgentIdempotent: the same request twice, a second request naming
// the same Job, and an agent restart never create a second Job.
func TestAgentIdempotent(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	h.submit("r1", "")
	h.waitStatus("r1", phase(protocol.PhasePending, ""))
	// The same file again: refused as a duplicate, set aside.
	dup := `{"apiVersion":"magekube/v1","id":"r1","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"load","block_run_id":2049}`
	if err := protocol.WriteFileAtomic(h.layout.RequestPath("r1"), []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the duplicate to be set aside", func() bool {
		_, err := os.Stat(filepath.Join(h.layout.Requests(), ".rejected", "r1.json"))
		return err == nil
	})
	// Another run whose Job name is the same: a collision, not a second Job.
	other := `{"apiVersion":"magekube/v1","id":"r2x","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"load","block_run_id":2049}`
	if _, err := protocol.Submit(h.layout, []byte(other)); err != nil {
		t.Fatal(err)
	}
	s := h.waitStatus("r2x", phase(protocol.PhaseFailed, protocol.ReasonNameCollision))
	if !strings.Contains(s.Message, `already exists for run "r1"`) {
		t.Errorf("collision message %q", s.Message)
	}
	// Restart: the run is adopted, not created again.
	h.stop()
	h.start()
	h.submit("r3", "")
	h.waitStatus("r3", phase(protocol.PhasePending, ""))
	if n := h.jobs("r1"); n != 1 {
		t.Errorf("run r1 has %d jobs after a restart", n)
	}
	if s, _ := protocol.ReadStatus(h.layout, "r1"); s.Phase != protocol.PhasePending {
		t.Errorf("r1 after restart: %+v", s)
	}
}

// TestAgentRecoversClaimWithoutJob: an agent that died after the claim but
// before the create leaves a run the next one dispatches.
func TestAgentRecoversClaimWithoutJob(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	req := `{"apiVersion":"magekube/v1","id":"crashed","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"load","block_run_id":77}`
	for _, d := range []string{h.layout.Requests(), h.layout.Runs()} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(h.layout.RequestPath("crashed"), []byte(req), 0o644)
	os.Mkdir(h.layout.RunDir("crashed"), 0o755) // mkdir done, rename not
	h.start()
	h.waitStatus("crashed", phase(protocol.PhasePending, ""))
	if h.jobs("crashed") != 1 {
		t.Errorf("want one job")
	}
}

// TestAgentBadInput: each bad input ends as a clear Failed status (or a
// log line and a file set aside when no id can be had), and the agent
// keeps serving.
func TestAgentBadInput(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	write := func(name string, data []byte) {
		if err := protocol.WriteFileAtomic(filepath.Join(h.layout.Requests(), name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("malformed.json", []byte(`{"apiVersion": "magekube/v1", "id": `+"\n\n"+`oops}`))
	write("unknown.json", []byte(`{"apiVersion":"magekube/v1","id":"unknown","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"l","block_run_id":1,"colour":"red"}`))
	write("huge.json", make([]byte, 5<<20))
	write("badconfig.json", []byte(`{"apiVersion":"magekube/v1","id":"badconfig","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"l","block_run_id":2,
	  "executor_config":{"resource_limits":{"memory":"2Gx"}}}`))
	write("policy.json", []byte(`{"apiVersion":"magekube/v1","id":"policy","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"l","block_run_id":3,
	  "executor_config":{"resource_limits":{"memory":"1Gi"},"namespace":"kube-system"}}`))
	target := filepath.Join(t.TempDir(), "target.json")
	os.WriteFile(target, []byte(`{}`), 0o644)
	if err := os.Symlink(target, filepath.Join(h.layout.Requests(), "link.json")); err != nil {
		t.Fatal(err)
	}
	write("bad..id.json", []byte(`{}`))
	for id, want := range map[string][]string{
		"malformed": {protocol.ReasonInvalidRequest, "not a JSON object"},
		"unknown":   {protocol.ReasonInvalidRequest, "colour: unknown field"},
		"huge":      {protocol.ReasonInvalidRequest, "the limit is 1048576"},
		"badconfig": {protocol.ReasonInvalidConfig, `request: executor_config.resource_limits.memory: "2Gx" is not a quantity`},
		"policy":    {protocol.ReasonPolicyDenied, `namespace "kube-system" is not the server pod's`},
		"link":      {protocol.ReasonInvalidRequest, "symbolic link"},
	} {
		s := h.waitStatus(id, phase(protocol.PhaseFailed, ""))
		if s.Reason != want[0] || !strings.Contains(s.Message, want[1]) {
			t.Errorf("%s: %s %q, want %s containing %q", id, s.Reason, s.Message, want[0], want[1])
		}
	}
	waitFor(t, "the file with a bad id to be set aside", func() bool {
		_, err := os.Stat(filepath.Join(h.layout.Requests(), ".rejected", "bad..id.json"))
		return err == nil
	})
	// Still serving: a good request goes through.
	h.submit("after", "")
	h.waitStatus("after", phase(protocol.PhasePending, ""))
}

// TestAgentCancel: the cancel file deletes the Job and its pods.
func TestAgentCancel(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	h.submit("c1", "")
	h.waitStatus("c1", phase(protocol.PhasePending, ""))
	if err := protocol.RequestCancel(h.layout, "c1"); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("c1", phase(protocol.PhaseCancelled, protocol.ReasonCancelled))
	if n := h.jobs("c1"); n != 0 {
		t.Errorf("%d jobs left after cancel", n)
	}
}

// TestPreflightNamesMissingPermissions runs the preflight with the token
// of a service account that may only read pods.
func TestPreflightNamesMissingPermissions(t *testing.T) {
	ns := env.Namespace(t, "rbac")
	ctx := t.Context()
	grant(t, ns, "pods-only", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}})
	limited := saClient(t, ns, "default")
	err := kube.Preflight(ctx, limited, ns)
	if err == nil {
		t.Fatal("preflight passed without job permissions")
	}
	for _, want := range []string{"missing permission: create jobs (batch) in namespace " + ns, "delete jobs", "deploy/manifests"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("preflight error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pods") {
		t.Errorf("pods are granted, but reported missing:\n%v", err)
	}
	if err := kube.Preflight(ctx, env.Client, ns); err != nil {
		t.Errorf("admin preflight: %v", err)
	}
}

// grant gives the namespace's default service account a Role with rules.
func grant(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := t.Context()
	if _, err := env.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// saClient is a client authenticated as a service account (TokenRequest).
func saClient(t *testing.T, ns, sa string) kubernetes.Interface {
	t.Helper()
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.BearerToken = tr.Status.Token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestForgedResultDecidesNothing: a result.json with exit 0 written by
// another pod into a run whose Job has not even scheduled is ignored;
// one sealed with the run's own key (its Job's UID) decides the run. The
// run's Events: the problem it waited for, and its end with its trace.
func TestForgedResultDecidesNothing(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	events := record.NewFakeRecorder(16)
	h.opts.Events = events
	h.start()
	h.submit("forged", "")
	s := h.waitStatus("forged", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	now := time.Now().UTC()
	res := protocol.Result{ExitCode: 0, Reason: protocol.ReasonCompleted, StartedAt: now, FinishedAt: now, Attempt: 1, Pod: "x"}
	res.Seal = protocol.SealResult("a-guessed-key", "forged", res)
	if err := protocol.WriteJSONAtomic(h.layout.RunFile("forged", protocol.ResultFile), res); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // a rescan (2 s) and the result's own file event have passed
	if got, _ := protocol.ReadStatus(h.layout, "forged"); got.Phase != protocol.PhasePending {
		t.Fatalf("a forged result.json decided the run: %+v", got)
	}
	job, err := env.Client.BatchV1().Jobs(h.ns).Get(t.Context(), s.Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Seal = protocol.SealResult(string(job.UID), "forged", res)
	if err := protocol.WriteJSONAtomic(h.layout.RunFile("forged", protocol.ResultFile), res); err != nil {
		t.Fatal(err)
	}
	s = h.waitStatus("forged", phase(protocol.PhaseSucceeded, ""))
	want := []string{
		"Warning " + protocol.ReasonUnschedulable + " ",
		"Normal " + dispatch.EventSucceeded + " run forged succeeded (trace " + s.TraceID + ")",
	}
	for i, w := range want {
		select {
		case got := <-events.Events:
			if !strings.HasPrefix(got, w) {
				t.Errorf("Event %d: %q, want %q", i, got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Event %d (%q) not recorded", i, w)
		}
	}
	select {
	case got := <-events.Events:
		t.Errorf("an Event more: %q", got)
	case <-time.After(time.Second):
	}
}

// TestReplicasNeverShareARun: a second agent on the same directory (a
// rolling update, a scale-up) leaves the first one's live runs alone and
// adopts them only once the first agent's pod is gone.
func TestReplicasNeverShareARun(t *testing.T) {
	a := newHarness(t, emptyProject(t))
	a.start()
	ids := []string{"rep1", "rep2", "rep3"}
	for _, id := range ids {
		a.submit(id, "")
		a.waitStatus(id, phase(protocol.PhasePending, ""))
	}
	second := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mage-server-2", Namespace: a.ns},
		Spec:       a.opts.Pod.Spec,
	}
	created, err := env.Client.CoreV1().Pods(a.ns).Create(t.Context(), second, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := &harness{t: t, ns: a.ns, layout: a.layout, opts: a.opts}
	b.opts.Pod = created
	b.start()
	time.Sleep(3 * time.Second) // past a rescan of b's (2 s)
	for _, id := range ids {
		if s, _ := protocol.ReadStatus(a.layout, id); s.Agent != "mage-server" {
			t.Errorf("run %s taken from a live agent: %+v", id, s)
		}
	}

	// The first agent goes away with its pod: the second adopts its runs.
	a.stop()
	if err := env.Client.CoreV1().Pods(a.ns).Delete(t.Context(), "mage-server", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		b.waitStatus(id, func(s protocol.Status) bool { return s.Agent == "mage-server-2" })
	}
	if err := protocol.RequestCancel(a.layout, "rep1"); err != nil {
		t.Fatal(err)
	}
	b.waitStatus("rep1", phase(protocol.PhaseCancelled, ""))
	for _, id := range ids {
		if n := a.jobs(id); id != "rep1" && n != 1 {
			t.Errorf("run %s has %d jobs", id, n)
		}
	}
}

// TestRewrittenStatusIsJudgedAgain: a status.json rewritten to Succeeded
// while its Job still runs is judged again from the Job after a restart,
// not trusted.
func TestRewrittenStatusIsJudgedAgain(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	h.submit("rewritten", "")
	s := h.waitStatus("rewritten", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	h.stop()
	s.Phase, s.Reason = protocol.PhaseSucceeded, protocol.ReasonCompleted
	if err := protocol.WriteJSONAtomic(h.layout.RunFile("rewritten", protocol.StatusFile), s); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.waitStatus("rewritten", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
}

// TestSquattedRunDirectory: a run directory some pod made before the
// run's request (a guessed id, with a planted status and a log link) is
// moved aside, and the request runs in a fresh one.
func TestSquattedRunDirectory(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.start()
	dir := h.layout.RunDir("squat")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := protocol.Status{ID: "squat", Phase: protocol.PhaseSucceeded}
	if err := protocol.WriteJSONAtomic(h.layout.RunFile("squat", protocol.StatusFile), planted); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", h.layout.RunFile("squat", protocol.LogFile)); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	// Written as the Mage trigger writes it (agent submit refuses an
	// existing run directory).
	req := `{"apiVersion":"magekube/v1","id":"squat","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"load","block_run_id":4242}`
	if err := protocol.WriteFileAtomic(h.layout.RequestPath("squat"), []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	s := h.waitStatus("squat", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	if s.Agent != "mage-server" {
		t.Errorf("status %+v", s)
	}
	if _, err := os.Lstat(h.layout.RunFile("squat", protocol.LogFile)); err == nil {
		t.Error("the planted log link is still in the run directory")
	}
	aside, _ := filepath.Glob(filepath.Join(h.layout.Runs(), ".squatted", "squat.*"))
	if len(aside) != 1 {
		t.Errorf("squatted directory not moved aside: %v", aside)
	}
}

// TestStartTimeout: a run that cannot be scheduled fails as StartTimeout
// once its start timeout passes, with the scheduler's words, and its Job
// is deleted; a run's job.start_timeout_seconds overrides the agent's.
func TestStartTimeout(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.opts.StartTimeout = time.Hour
	h.start()
	h.submit("late", `,"executor_config":{"job":{"start_timeout_seconds":2}}`)
	s := h.waitStatus("late", phase(protocol.PhaseFailed, protocol.ReasonStartTimeout))
	if !strings.Contains(s.Message, "did not start within 2s") || !strings.Contains(s.Message, "Unschedulable") {
		t.Errorf("message %q lacks the limit or the waiting reason", s.Message)
	}
	waitFor(t, "the Job to be deleted", func() bool { return h.jobs("late") == 0 })
}

// TestBadConfigFailsWhileQueued: a request whose config is invalid fails
// at once, even while every in-flight slot is taken.
func TestBadConfigFailsWhileQueued(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.opts.MaxInflight = 1
	h.start()
	h.submit("slot1", "")
	h.waitStatus("slot1", phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	h.submit("bad1", `,"executor_config":{"resource_limits":{"memory":"2Gx"}}`)
	s := h.waitStatusWithin("bad1", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonInvalidConfig))
	if !strings.Contains(s.Message, "resource_limits.memory") {
		t.Errorf("message %q does not name the field", s.Message)
	}
	h.submit("queued1", "")
	h.waitStatus("queued1", phase(protocol.PhaseQueued, ""))
	if st, _ := protocol.ReadStatus(h.layout, "slot1"); st.Phase != protocol.PhasePending {
		t.Errorf("slot1 is %s, want still Pending", st.Phase)
	}
}

// TestBatchAdmittedInOrder: request files the agent finds together (its
// start-up scan: one batch for the parallel intake workers) take the
// in-flight slots in the batch's order, the directory's by name, whatever
// order the workers finish them in.
func TestBatchAdmittedInOrder(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	h.opts.MaxInflight = 3
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("order%02d", i)
		ids = append(ids, id)
		h.submit(id, "")
	}
	h.start()
	for i, id := range ids {
		if i < h.opts.MaxInflight {
			h.waitStatus(id, phase(protocol.PhasePending, protocol.ReasonUnschedulable))
		} else {
			h.waitStatus(id, phase(protocol.PhaseQueued, ""))
		}
	}
	for _, id := range ids[h.opts.MaxInflight:] {
		if n := h.jobs(id); n != 0 {
			t.Errorf("run %s has %d Job(s); the first %d in the batch hold the slots", id, n, h.opts.MaxInflight)
		}
	}
}

// TestNewNamespaceNeverBlocksTheLoop: while the caches of a namespace the
// agent may not list wait to sync (up to a minute), runs in its own
// namespace go on.
func TestNewNamespaceNeverBlocksTheLoop(t *testing.T) {
	h := newHarness(t, emptyProject(t))
	other := env.Namespace(t, "nolist")
	var rules []rbacv1.PolicyRule
	for _, r := range kube.Required {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{r.Group}, Resources: []string{r.Resource}, Verbs: []string{r.Verb}})
	}
	grant(t, h.ns, "agent", rules)
	h.opts.Client = saClient(t, h.ns, "default")
	h.opts.Policy.Namespaces = []string{"*"}
	h.start()
	h.submit("elsewhere", `,"executor_config":{"namespace":"`+other+`"}`)
	time.Sleep(time.Second) // its namespace's caches now wait to sync
	h.submit("home", "")
	h.waitStatusWithin("home", 15*time.Second, phase(protocol.PhasePending, protocol.ReasonUnschedulable))
	if st, _ := protocol.ReadStatus(h.layout, "elsewhere"); st.Phase.Terminal() || st.Job != "" {
		t.Errorf("the run in %s is %s (job %q); want waiting for its namespace's caches", other, st.Phase, st.Job)
	}
}
