package dispatch

import (
	"context"
	"errors"
	"io/fs"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// refreshDirty re-judges every run an event touched.
func (a *Agent) refreshDirty(ctx context.Context) {
	for _, id := range a.dirty.take() {
		if r, ok := a.runs[id]; ok {
			a.refresh(ctx, r)
		}
	}
}

// refresh judges r from its facts and applies the verdict.
func (a *Agent) refresh(ctx context.Context, r *run) {
	if r.creating || r.status.Phase.Terminal() {
		return // a create under way reports to onCreated
	}
	a.apply(ctx, r, Judge(a.facts(ctx, r)))
}

// facts gathers what the caches, the run directory and, for a Job missing
// from the cache, the API server say of r.
func (a *Agent) facts(ctx context.Context, r *run) Facts {
	f := Facts{Status: r.status, Created: r.job != "", Stop: r.stop, StartTimeout: r.startTimeout}
	if f.StartTimeout == 0 {
		f.StartTimeout = a.o.StartTimeout
	}
	if !r.pendingSince.IsZero() {
		f.Waited = time.Since(r.pendingSince)
	}
	if !f.Created {
		return f
	}
	if t, ok := a.trackers[r.namespace]; !ok || !t.synced {
		f.Blind = true
		return f
	}
	f.Observation = a.observe(r)
	if f.Job != nil {
		r.jobCached = true
		return f
	}
	if f.Result != nil && f.Result.ExitCode == 0 {
		return f
	}
	// A Job just created reaches the cache a moment later, and its add
	// event refreshes the run again: only a Job the cache has had, or one
	// still missing after the grace, is asked of the API server (a call
	// the loop waits for).
	if r.jobCached || time.Since(r.times.jobCreated) >= cacheGrace {
		f.JobGone = a.jobGone(ctx, r)
	}
	return f
}

// apply carries out a verdict: write the status, end the run, or delete
// its Job.
func (a *Agent) apply(ctx context.Context, r *run, v Verdict) {
	switch v.Action {
	case Wait:
		return
	case DeleteJob:
		a.log.Warn("stopping run", "run", r.id, "job", r.job, "reason", v.Stop.Reason, "message", v.Stop.Message)
		a.stop(ctx, r, *v.Stop)
		return
	}
	s := &r.status
	changed := s.Phase != v.Phase || s.Reason != v.Reason || s.Message != v.Message || s.Pod != v.Pod || s.Node != v.Node || s.Attempts != v.Attempts
	if !changed {
		return
	}
	a.noteProgress(r, v)
	s.Reason, s.Message, s.Pod, s.Node, s.Attempts, s.ExitCode = v.Reason, v.Message, v.Pod, v.Node, v.Attempts, v.ExitCode
	if !v.StartedAt.IsZero() && s.StartedAt == nil {
		t := v.StartedAt
		s.StartedAt = &t
	}
	if v.Phase == protocol.PhaseRunning && s.StartedAt == nil {
		now := time.Now().UTC()
		s.StartedAt = &now
	}
	if v.Phase.Terminal() {
		a.finish(ctx, r, v.Phase, v.Reason, v.Message)
		return
	}
	s.Phase = v.Phase
	a.writeStatus(r)
}

// cacheGrace is how long a created Job may be missing from the cache
// before the agent asks the API server whether it was deleted.
const cacheGrace = 10 * time.Second

// jobGone confirms with the API server that a Job missing from the cache
// is really gone (the cache may lag a fresh create).
func (a *Agent) jobGone(ctx context.Context, r *run) bool {
	_, err := a.o.Client.BatchV1().Jobs(r.namespace).Get(ctx, r.job, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// finish ends a run: final status, then its slot goes to the next queued.
func (a *Agent) finish(ctx context.Context, r *run, phase protocol.Phase, reason, message string) {
	now := time.Now().UTC()
	r.status.Phase, r.status.Reason, r.status.Message, r.status.FinishedAt = phase, reason, message, &now
	a.writeStatus(r)
	var res *protocol.Result
	if r.job != "" {
		res = a.sealedResult(r, nil)
	}
	a.exportTrace(ctx, r, res)
	switch phase {
	case protocol.PhaseSucceeded:
		a.event(r, false, EventSucceeded, "run "+r.id+" succeeded"+traceNote(r))
	case protocol.PhaseCancelled:
		a.event(r, false, EventCancelled, "run "+r.id+" cancelled"+traceNote(r))
	default:
		a.event(r, true, EventFailed, reason+": "+message+traceNote(r))
	}
	a.o.Metrics.RunFinished(string(phase), reason, now.Sub(r.status.CreatedAt))
	if res != nil && !res.FinishedAt.IsZero() {
		a.o.Metrics.Noticed(now.Sub(res.FinishedAt))
	}
	a.log.Info("run finished", "run", r.id, "phase", phase, "reason", reason, "message", message)
	if r.watched {
		_ = a.watcher.Remove(a.o.Layout.RunDir(r.id))
	}
	delete(a.runs, r.id)
	a.live.Delete(r.id)
	if r.queued {
		a.queue = without(a.queue, r.id)
		a.dequeued(r)
	}
	if r.inflight {
		r.inflight = false
		a.release(ctx)
	}
}

// release frees an in-flight slot and dispatches the next queued run.
func (a *Agent) release(ctx context.Context) {
	a.inflight--
	for len(a.queue) > 0 && a.inflight < a.o.MaxInflight {
		id := a.queue[0]
		a.queue = a.queue[1:]
		if r, ok := a.runs[id]; ok {
			a.dequeued(r)
			a.dispatch(ctx, r, nil)
		}
	}
}

// writeStatus hands the run's status to the status writer (see
// statuswriter.go); the file follows within one write.
func (a *Agent) writeStatus(r *run) {
	a.countPending(r)
	a.status.put(r.status)
}

// countPending keeps magekube_runs_pending{reason} in step with the run's
// status: counted while Pending, under the reason it waits for.
func (a *Agent) countPending(r *run) {
	now := ""
	if r.status.Phase == protocol.PhasePending {
		now = r.status.Reason
		if now == "" {
			now = string(protocol.PhasePending)
		}
	}
	if now == r.pendingReason {
		return
	}
	if r.pendingReason != "" {
		a.o.Metrics.Pending(r.pendingReason, -1)
	}
	if now != "" {
		a.o.Metrics.Pending(now, 1)
	}
	r.pendingReason = now
}

// watchRun adds the run's directory to the watcher, so a result or cancel
// file written on this node is seen at once (other nodes: the informers).
func (a *Agent) watchRun(r *run) {
	if err := a.watcher.Add(a.o.Layout.RunDir(r.id)); err == nil {
		r.watched = true
	}
}

func (a *Agent) readResult(id string) *protocol.Result {
	var res protocol.Result
	if err := a.vol.readRunJSON(id, protocol.ResultFile, &res); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("result file ignored; the run is judged by its Job and pods", "run", id, "err", err)
		}
		return nil
	}
	return &res
}
