package dispatch

import (
	corev1 "k8s.io/api/core/v1"
)

// Kubernetes Events on the Job tell the run's story to `kubectl describe
// job`, beside the Job controller's own: each problem the run waited for
// (a Warning: Unschedulable, ImagePullBackOff, ...) and one Event at its
// end, naming its trace. A run that goes well costs one Event: Events are
// API writes, and the recorder drops what its queue (1,000) cannot hold,
// so the agent spends them on what an operator reads.
const (
	EventSucceeded = "RunSucceeded"
	EventFailed    = "RunFailed"
	EventCancelled = "RunCancelled"
)

// traceNote names the run's trace in an Event's message.
func traceNote(r *run) string {
	if r.status.TraceID == "" {
		return ""
	}
	return " (trace " + r.status.TraceID + ")"
}

// event records an Event on the run's Job, when the agent has a recorder
// and the run a Job.
func (a *Agent) event(r *run, warning bool, reason, message string) {
	if a.o.Events == nil || r.job == "" {
		return
	}
	uid := r.jobUID
	if t, ok := a.trackers[r.namespace]; ok && uid == "" {
		if job := t.cachedJob(r.namespace, r.job); job != nil {
			uid = job.UID
			r.jobUID = uid
		}
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	ref := &corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: r.namespace, Name: r.job, UID: uid}
	a.o.Events.Event(ref, typ, reason, message)
}
