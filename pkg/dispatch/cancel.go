package dispatch

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// checkCancel stops the run as cancelled when its cancel file exists.
func (a *Agent) checkCancel(ctx context.Context, id string) {
	r, ok := a.runs[id]
	if !ok || r.stop != nil {
		return
	}
	if !a.vol.runHas(id, protocol.CancelFile) {
		return
	}
	a.log.Info("cancelling run", "run", r.id, "job", r.job)
	a.stop(ctx, r, cancelled)
}

// stop records how the run ends and deletes its Job and pods; Judge ends
// the run once the deletion shows (at once for a run without a Job, and
// onCreated calls stop again for a create under way).
func (a *Agent) stop(ctx context.Context, r *run, how Stop) {
	r.stop = &how
	if r.creating {
		return
	}
	if r.job != "" {
		// Only the Job this agent created or found by its own labels: the
		// UID precondition refuses any other Job that has the name now.
		background := metav1.DeletePropagationBackground
		opts := metav1.DeleteOptions{PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &r.jobUID}}
		err := a.o.Client.BatchV1().Jobs(r.namespace).Delete(ctx, r.job, opts)
		if apierrors.IsConflict(err) {
			a.log.Warn("the run's Job was replaced by another of the same name, which is not deleted", "run", r.id, "job", r.job, "err", err)
			err = nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			a.log.Error("delete job", "run", r.id, "job", r.job, "err", err)
			r.stop = nil // judged again at the next rescan, which tries again
			return
		}
	}
	a.dirty.add(r.id)
}

func without(list []string, id string) []string {
	out := list[:0]
	for _, v := range list {
		if v != id {
			out = append(out, v)
		}
	}
	return out
}
