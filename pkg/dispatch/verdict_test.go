package dispatch

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestJudgeDecidesEveryEnd: the ends the agent brings about or must
// confirm (cancel, Job deleted, Job gone, start timeout) are Judge's too.
func TestJudgeDecidesEveryEnd(t *testing.T) {
	t.Parallel()
	last := protocol.Status{Namespace: "ns", Job: "j", Pod: "p1", Node: "n1", Attempts: 1}
	three := &protocol.Result{ExitCode: 3, Reason: protocol.ReasonError, Message: "the command exited with code 3"}
	timeout := &Stop{Phase: protocol.PhaseFailed, Reason: protocol.ReasonStartTimeout, Message: "did not start"}
	unschedulable := []*corev1.Pod{podAt("p", 0, func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available"}}
	})}
	for _, tc := range []struct {
		name    string
		f       Facts
		action  Action
		phase   protocol.Phase
		reason  string
		message string // a part of it
	}{
		{"queued", Facts{}, Wait, "", "", ""},
		{"cancelled while queued", Facts{Stop: &cancelled}, Update, protocol.PhaseCancelled, protocol.ReasonCancelled, "before a Job was created"},
		{"caches not synced", Facts{Created: true, Status: last, Blind: true, JobGone: true}, Wait, "", "", ""},
		{"missing from the cache, unconfirmed", Facts{Created: true, Status: last}, Wait, "", "", ""},
		{"job deleted by someone", Facts{Created: true, Status: last, JobGone: true}, Update, protocol.PhaseFailed, protocol.ReasonJobDeleted, "job ns/j was deleted"},
		{"job gone after a failed attempt", Facts{Created: true, Status: last, JobGone: true, Observation: Observation{Result: three}},
			Update, protocol.PhaseFailed, protocol.ReasonError, "exited with code 3; job ns/j is gone"},
		{"cancel not shown yet", Facts{Created: true, Status: last, Stop: &cancelled, Observation: Observation{Job: jobWith("", "", 0)}}, Wait, "", "", ""},
		{"cancel done", Facts{Created: true, Status: last, Stop: &cancelled, JobGone: true}, Update, protocol.PhaseCancelled, protocol.ReasonCancelled, "deleted"},
		{"start timeout reached", Facts{Created: true, Status: last, Waited: time.Minute, StartTimeout: time.Minute,
			Observation: Observation{Job: jobWith("", "", 0), Pods: unschedulable}}, DeleteJob, "", "", ""},
		{"start timeout not reached", Facts{Created: true, Status: last, Waited: time.Second, StartTimeout: time.Minute,
			Observation: Observation{Job: jobWith("", "", 0), Pods: unschedulable}}, Update, protocol.PhasePending, protocol.ReasonUnschedulable, "0/2 nodes"},
		{"start timeout done", Facts{Created: true, Status: last, Stop: timeout, JobGone: true}, Update, protocol.PhaseFailed, protocol.ReasonStartTimeout, "did not start"},
		{"cancelled after the block succeeded", Facts{Created: true, Status: last, Stop: &cancelled, Observation: Observation{Result: &protocol.Result{Pod: "p1"}}},
			Update, protocol.PhaseSucceeded, protocol.ReasonCompleted, ""},
		{"success outlives its Job", Facts{Created: true, Status: last, Observation: Observation{Result: &protocol.Result{Pod: "p1"}}},
			Update, protocol.PhaseSucceeded, protocol.ReasonCompleted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Judge(tc.f)
			if v.Action != tc.action || v.Phase != tc.phase || v.Reason != tc.reason || !strings.Contains(v.Message, tc.message) {
				t.Errorf("got action %d %s/%s (%q), want action %d %s/%s (…%q…)", v.Action, v.Phase, v.Reason, v.Message, tc.action, tc.phase, tc.reason, tc.message)
			}
			if v.Phase.Terminal() && v.Phase != protocol.PhaseSucceeded && tc.f.Created && (v.Pod != last.Pod || v.Node != last.Node) {
				t.Errorf("a gone Job's run keeps its pod and node: got %q/%q", v.Pod, v.Node)
			}
		})
	}
	v := Judge(Facts{Created: true, Waited: 2 * time.Minute, StartTimeout: time.Minute, Observation: Observation{Job: jobWith("", "", 0), Pods: unschedulable}})
	if v.Stop == nil || v.Stop.Reason != protocol.ReasonStartTimeout || !strings.Contains(v.Stop.Message, "Unschedulable: 0/2 nodes are available") {
		t.Errorf("start timeout stop = %+v, want StartTimeout naming what the run waited for", v.Stop)
	}
}

// TestRefusedPods: a Job whose pods the API server refuses is judged by
// the Job controller's FailedCreate message: a refusal that cannot pass
// ends the run at once (its Job deleted), a quota that may free up keeps
// it Pending under QuotaExceeded until quotaWait.
func TestRefusedPods(t *testing.T) {
	t.Parallel()
	const (
		zeroQuota = `Error creating: pods "j-x" is forbidden: exceeded quota: none, requested: pods=1, used: pods=0, limited: pods=0`
		fullQuota = `Error creating: pods "j-x" is forbidden: exceeded quota: some, requested: cpu=1, used: cpu=3500m, limited: cpu=4`
		podSec    = `Error creating: pods "j-x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`
		webhook   = `Error creating: admission webhook "policy.example.com" denied the request: no latest tags`
		timeout   = `Error creating: etcdserver: request timed out`
	)
	for _, tc := range []struct {
		name    string
		message string
		waited  time.Duration
		action  Action
		reason  string
	}{
		{"a quota of zero", zeroQuota, 0, DeleteJob, protocol.ReasonQuotaExceeded},
		{"a full quota", fullQuota, time.Minute, Update, protocol.ReasonQuotaExceeded},
		{"a full quota past the wait", fullQuota, quotaWait, DeleteJob, protocol.ReasonQuotaExceeded},
		{"PodSecurity", podSec, 0, DeleteJob, protocol.ReasonPodSecurityRejected},
		{"a webhook", webhook, 0, DeleteJob, protocol.ReasonAdmissionRejected},
		{"a passing error", timeout, time.Minute, Update, protocol.ReasonFailedCreate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := Facts{Created: true, Waited: tc.waited, StartTimeout: DefaultStartTimeout,
				Observation: Observation{Job: jobWith("", "", 0), Refusal: &Refusal{Message: tc.message}}}
			v := Judge(f)
			if v.Action != tc.action {
				t.Fatalf("action %d, want %d (%+v)", v.Action, tc.action, v)
			}
			reason, message := v.Reason, v.Message
			if v.Stop != nil {
				reason, message = v.Stop.Reason, v.Stop.Message
			} else if v.Phase != protocol.PhasePending {
				t.Errorf("phase %s, want Pending", v.Phase)
			}
			if reason != tc.reason || !strings.Contains(message, tc.message) {
				t.Errorf("%s (%q), want %s with the API's message", reason, message, tc.reason)
			}
		})
	}
}
