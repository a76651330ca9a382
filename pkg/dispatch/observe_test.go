package dispatch

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

func jobWith(cond batchv1.JobConditionType, reason string, failed int32) *batchv1.Job {
	j := &batchv1.Job{Status: batchv1.JobStatus{Failed: failed}}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, Reason: reason, Message: "job says " + reason}}
	}
	return j
}

func podAt(name string, age time.Duration, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))},
		Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	if mutate != nil {
		mutate(p)
	}
	return p
}

func exited(code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}}
	}
}

// trimmed is o as the informer caches hold it (compact) and the tracker
// hands it to Judge (expand).
func trimmed(t *testing.T, o Observation) Observation {
	t.Helper()
	out := Observation{Result: o.Result}
	if o.Job != nil {
		j, err := compact(o.Job.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		out.Job = j.(*cachedJob).job()
	}
	for _, p := range o.Pods {
		tp, err := compact(p.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		out.Pods = append(out.Pods, tp.(*cachedPod).pod())
	}
	return out
}

func TestJudge(t *testing.T) {
	t.Parallel()
	zero := &protocol.Result{ExitCode: 0, Pod: "p2"}
	three := &protocol.Result{ExitCode: 3, Reason: "Error", Message: "the command exited with code 3"}
	for _, tc := range []struct {
		name   string
		o      Observation
		phase  protocol.Phase
		reason string
		exit   int // -1: none
	}{
		{"no pods yet", Observation{Job: jobWith("", "", 0)}, protocol.PhaseDispatched, "", -1},
		{"unschedulable", Observation{Job: jobWith("", "", 0), Pods: []*corev1.Pod{podAt("p", 0, func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available"}}
		})}}, protocol.PhasePending, protocol.ReasonUnschedulable, -1},
		{"image never pulled", Observation{Job: jobWith("", "", 0), Pods: []*corev1.Pod{podAt("p", 0, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "not present"}}}}
		})}}, protocol.PhasePending, protocol.ReasonErrImageNeverPull, -1},
		{"running", Observation{Job: jobWith("", "", 0), Pods: []*corev1.Pod{podAt("p", 0, func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })}}, protocol.PhaseRunning, "", -1},
		{"result 0 wins before the job completes", Observation{Job: jobWith("", "", 0), Result: zero}, protocol.PhaseSucceeded, protocol.ReasonCompleted, 0},
		{"a failed attempt is not final", Observation{Job: jobWith("", "", 1), Result: three,
			Pods: []*corev1.Pod{podAt("p1", time.Minute, exited(3, "Error"))}}, protocol.PhaseRunning, "", -1},
		{"retry succeeded", Observation{Job: jobWith(batchv1.JobComplete, "", 1),
			Pods: []*corev1.Pod{podAt("p1", time.Minute, exited(3, "Error")), podAt("p2", 0, nil)}}, protocol.PhaseSucceeded, protocol.ReasonCompleted, 0},
		{"backoff exceeded", Observation{Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1), Result: three,
			Pods: []*corev1.Pod{podAt("p1", 0, exited(3, "Error"))}}, protocol.PhaseFailed, protocol.ReasonBackoffLimitExceeded, 3},
		{"oom without a result", Observation{Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1),
			Pods: []*corev1.Pod{podAt("p1", 0, exited(137, "OOMKilled"))}}, protocol.PhaseFailed, protocol.ReasonOOMKilled, 137},
		{"evicted", Observation{Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1),
			Pods: []*corev1.Pod{podAt("p1", 0, func(p *corev1.Pod) { p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted" })}}, protocol.PhaseFailed, protocol.ReasonEvicted, -1},
		{"node lost: the Job's interim failure, the taint manager's deletion of a pod marked not ready", Observation{
			Job: jobWith(batchv1.JobFailureTarget, "BackoffLimitExceeded", 1),
			Pods: []*corev1.Pod{podAt("p1", 0, func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse},
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager", Message: "Taint manager: deleting due to NoExecute taint"}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			})}}, protocol.PhaseFailed, protocol.ReasonNodeLost, -1},
		{"drained: deleted by Kubernetes, the node alive", Observation{
			Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1),
			Pods: []*corev1.Pod{podAt("p1", 0, func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue},
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"}}
			})}}, protocol.PhaseFailed, protocol.ReasonEvicted, -1},
		{"interim success", Observation{Job: jobWith(batchv1.JobSuccessCriteriaMet, "", 0)}, protocol.PhaseSucceeded, protocol.ReasonCompleted, 0},
		{"deadline", Observation{Job: jobWith(batchv1.JobFailed, "DeadlineExceeded", 0)}, protocol.PhaseFailed, protocol.ReasonDeadlineExceeded, -1},
		{"runner saw an OOM kill before the pod status came", Observation{Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1), Result: &protocol.Result{ExitCode: 137, Reason: "OOMKilled"}},
			protocol.PhaseFailed, protocol.ReasonOOMKilled, 137},
		{"runner timeout", Observation{Job: jobWith(batchv1.JobFailed, "BackoffLimitExceeded", 1), Result: &protocol.Result{ExitCode: 124, Reason: "Timeout"}},
			protocol.PhaseFailed, protocol.ReasonTimeout, 124},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Judge(Facts{Observation: tc.o, Created: true})
			if tv := Judge(Facts{Observation: trimmed(t, tc.o), Created: true}); !reflect.DeepEqual(tv, v) {
				t.Errorf("from the trimmed cache objects: %+v, from the whole: %+v", tv, v)
			}
			if v.Phase != tc.phase || v.Reason != tc.reason {
				t.Errorf("got %s/%s (%q), want %s/%s", v.Phase, v.Reason, v.Message, tc.phase, tc.reason)
			}
			switch {
			case tc.exit < 0 && v.ExitCode != nil:
				t.Errorf("exit code %d, want none", *v.ExitCode)
			case tc.exit >= 0 && (v.ExitCode == nil || *v.ExitCode != tc.exit):
				t.Errorf("exit code %v, want %d", v.ExitCode, tc.exit)
			}
		})
	}
}
