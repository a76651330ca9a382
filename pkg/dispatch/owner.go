package dispatch

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// Ownership across replicas: every status names the agent (its pod) that
// tracks the run. An agent adopts another's unfinished run only once that
// agent's pod is gone, so two live agents never track the same run (a
// rolling update, a scale-up). Runs of a live agent are looked at again on
// every rescan.

// ownerAlive reports whether the agent pod named owner still exists, in
// the agent's own namespace. alive caches the answers of one pass; an
// error other than NotFound counts as alive (never take a run on doubt).
func (a *Agent) ownerAlive(ctx context.Context, owner string, alive map[string]bool) bool {
	if owner == "" || owner == a.o.Pod.Name {
		return false
	}
	if v, ok := alive[owner]; ok {
		return v
	}
	pod, err := a.o.Client.CoreV1().Pods(a.o.Pod.Namespace).Get(ctx, owner, metav1.GetOptions{})
	v := !apierrors.IsNotFound(err) && (err != nil || pod.DeletionTimestamp == nil)
	alive[owner] = v
	return v
}

// adoptOrphans takes over the runs of agents that are gone since the last
// look.
func (a *Agent) adoptOrphans(ctx context.Context) {
	if t, ok := a.trackers[a.o.Pod.Namespace]; len(a.foreign) == 0 || !ok || !t.synced {
		return // judged on the fresh cache, at a later rescan
	}
	alive := map[string]bool{}
	jobs := a.jobsByRun()
	for id, owner := range a.foreign {
		if a.ownerAlive(ctx, owner, alive) {
			continue
		}
		delete(a.foreign, id)
		a.recoverRun(ctx, id, jobs, alive)
	}
}

// jobsByRun maps run ids to the Jobs of this agent's instance in every
// namespace it tracks, from the informer caches: one pass for all runs.
func (a *Agent) jobsByRun() map[string]*cachedJob {
	out := map[string]*cachedJob{}
	for _, t := range a.trackers {
		if t.synced {
			t.addJobsByRun(out)
		}
	}
	return out
}

// statusAgrees reports whether a final status on disk agrees with the
// run's Job: a Job still running, or one that ended otherwise than the
// file says, means the file was rewritten (every pod can write the
// volume), and the run is judged again from the Job.
func statusAgrees(st protocol.Status, job *batchv1.Job) bool {
	complete, failed := condition(job, batchv1.JobComplete) != nil, condition(job, batchv1.JobFailed) != nil
	switch st.Phase {
	case protocol.PhaseSucceeded:
		return complete || failed // a success the runner reported may end the Job either way
	case protocol.PhaseFailed, protocol.PhaseCancelled:
		return failed || job.DeletionTimestamp != nil
	}
	return false
}
