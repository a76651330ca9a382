package dispatch

import (
	corev1 "k8s.io/api/core/v1"
)

// Kubernetes Events on the Job tell the run's story to `kubectl describe
// job`: dispatched, each diagnosed reason it waited or failed for, and the
// end.
const (
	EventDispatched = "Dispatched"
	EventSucceeded  = "RunSucceeded"
	EventFailed     = "RunFailed"
	EventCancelled  = "RunCancelled"
)

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
