package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
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

// refresh derives r's status from the caches and the runner's result and
// writes it when it changed.
func (a *Agent) refresh(ctx context.Context, r *run) {
	if r.creating || r.job == "" || r.status.Phase.Terminal() {
		return
	}
	o := a.observe(r)
	if o.Job != nil {
		r.jobCached = true
	}
	if o.Job == nil && (o.Result == nil || o.Result.ExitCode != 0) {
		// A Job just created reaches the cache a moment later, and its add
		// event refreshes the run again: only a Job the cache has had, or
		// one still missing after the grace, is asked of the API server
		// (a call the loop waits for).
		if !r.jobCached && time.Since(r.times.jobCreated) < cacheGrace {
			return
		}
		if !a.jobGone(ctx, r) {
			return
		}
		switch {
		case r.timedOut != "":
			a.finish(r, protocol.PhaseFailed, protocol.ReasonStartTimeout, r.timedOut)
		case r.cancelled:
			a.finish(r, protocol.PhaseCancelled, protocol.ReasonCancelled, "cancelled; the Job and its pods were deleted")
		case o.Result != nil:
			code := o.Result.ExitCode
			r.status.ExitCode = &code
			a.finish(r, protocol.PhaseFailed, o.Result.Reason, joinMessage(o.Result.Message, "job "+r.namespace+"/"+r.job+" is gone"))
		default:
			a.finish(r, protocol.PhaseFailed, protocol.ReasonJobDeleted, "job "+r.namespace+"/"+r.job+" was deleted before the run finished")
		}
		return
	}
	if r.cancelled {
		return // waiting for the deletion to show
	}
	v := Judge(o)
	if a.startTimedOut(ctx, r, v) {
		return
	}
	s := &r.status
	changed := s.Phase != v.Phase || s.Reason != v.Reason || s.Message != v.Message || s.Pod != v.Pod || s.Node != v.Node || s.Attempts != v.Attempts
	if !changed {
		return
	}
	a.noteProgress(r, v)
	s.Reason, s.Message, s.Pod, s.Node, s.Attempts, s.ExitCode = v.Reason, v.Message, v.Pod, v.Node, v.Attempts, v.ExitCode
	if o.Result != nil && s.StartedAt == nil {
		t := o.Result.StartedAt
		s.StartedAt = &t
	}
	if v.Phase == protocol.PhaseRunning && s.StartedAt == nil {
		now := time.Now().UTC()
		s.StartedAt = &now
	}
	if v.Phase.Terminal() {
		a.finish(r, v.Phase, v.Reason, v.Message)
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
func (a *Agent) finish(r *run, phase protocol.Phase, reason, message string) {
	now := time.Now().UTC()
	r.status.Phase, r.status.Reason, r.status.Message, r.status.FinishedAt = phase, reason, message, &now
	a.writeStatus(r)
	var res *protocol.Result
	if r.job != "" {
		res = a.sealedResult(r, nil)
	}
	a.exportTrace(r, res)
	switch phase {
	case protocol.PhaseSucceeded:
		a.event(r, false, EventSucceeded, "run "+r.id+" succeeded")
	case protocol.PhaseCancelled:
		a.event(r, false, EventCancelled, "run "+r.id+" cancelled")
	default:
		a.event(r, true, EventFailed, reason+": "+message)
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
	if r.job != "" && !r.creating {
		a.release()
	}
}

// release frees an in-flight slot and dispatches the next queued run.
func (a *Agent) release() {
	a.inflight--
	for len(a.queue) > 0 && a.inflight < a.o.MaxInflight {
		id := a.queue[0]
		a.queue = a.queue[1:]
		if r, ok := a.runs[id]; ok {
			a.dispatch(a.ctx, r)
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
	if err := protocol.ReadJSON(a.o.Layout.RunFile(id, protocol.ResultFile), &res); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("result file ignored; the run is judged by its Job and pods", "run", id, "err", err)
		}
		return nil
	}
	return &res
}

// checkCancel cancels the run when its cancel file exists.
func (a *Agent) checkCancel(ctx context.Context, id string) {
	r, ok := a.runs[id]
	if !ok || r.cancelled {
		return
	}
	if _, err := os.Stat(a.o.Layout.RunFile(id, protocol.CancelFile)); err != nil {
		return
	}
	r.cancelled = true
	a.cancel(ctx, r)
}

// cancel deletes the run's Job and its pods; the run ends as Cancelled
// when the deletion shows in the cache (or at once, without a Job).
func (a *Agent) cancel(ctx context.Context, r *run) {
	a.log.Info("cancelling run", "run", r.id, "job", r.job)
	if r.creating {
		return // onCreated cancels once the Job exists
	}
	if r.job == "" {
		a.queue = without(a.queue, r.id)
		a.finish(r, protocol.PhaseCancelled, protocol.ReasonCancelled, "cancelled before a Job was created")
		return
	}
	background := metav1.DeletePropagationBackground
	err := a.o.Client.BatchV1().Jobs(r.namespace).Delete(ctx, r.job, metav1.DeleteOptions{PropagationPolicy: &background})
	if err != nil && !apierrors.IsNotFound(err) {
		a.log.Error("delete job for cancel", "run", r.id, "err", err)
		r.cancelled = false // the next rescan tries again
		return
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

// recoverRuns adopts every unfinished run found in runs/: a claim
// interrupted before the request moved is completed; a run with a Job is
// tracked; one without is dispatched again (the Job name is the same, so
// a Job created just before a crash is adopted, never duplicated).
func (a *Agent) recoverRuns(ctx context.Context) {
	entries, err := os.ReadDir(a.o.Layout.Runs())
	if err != nil {
		a.log.Error("read runs directory", "err", err)
		return
	}
	jobs, alive := a.jobsByRun(), map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() || protocol.ValidateID(e.Name()) != nil {
			continue
		}
		a.recoverRun(ctx, e.Name(), jobs, alive)
	}
}

// recoverRun adopts one run found on disk, unless it ended (and its Job
// agrees) or a live agent tracks it.
func (a *Agent) recoverRun(ctx context.Context, id string, jobs map[string]*batchv1.Job, alive map[string]bool) {
	var st protocol.Status
	err := protocol.ReadJSON(a.o.Layout.RunFile(id, protocol.StatusFile), &st)
	if err == nil && st.Phase.Terminal() {
		job := jobs[id]
		if job == nil || statusAgrees(st, job) {
			return
		}
		a.log.Warn("status.json disagrees with the run's Job; judging the run again", "run", id, "phase", st.Phase, "job", job.Name)
		st.Phase, st.Reason, st.Message, st.FinishedAt = protocol.PhaseDispatched, "", "", nil
		st.Namespace, st.Job = job.Namespace, job.Name
	}
	if _, rerr := os.Stat(a.o.Layout.RunFile(id, protocol.RequestFile)); errors.Is(err, fs.ErrNotExist) && rerr == nil && claimedJustNow(a.o.Layout.RunDir(id)) {
		// Another agent may be between its claim and its first status:
		// look again at the next rescan, when its status names it.
		a.foreign[id] = ""
		return
	}
	if err != nil {
		st = a.newStatus(id) // missing or unreadable: derived again from the Job
	}
	if err == nil && a.ownerAlive(ctx, st.Agent, alive) {
		a.foreign[id] = st.Agent
		return
	}
	adopted := err == nil && st.Agent != "" && st.Agent != a.o.Pod.Name
	if adopted {
		a.log.Info("adopting the run of an agent that is gone", "run", id, "agent", st.Agent)
	}
	st.Agent = a.o.Pod.Name
	reqPath := a.o.Layout.RunFile(id, protocol.RequestFile)
	if _, err := os.Stat(reqPath); errors.Is(err, fs.ErrNotExist) {
		_ = os.Rename(a.o.Layout.RequestPath(id), reqPath) // finish an interrupted claim
	}
	r := &run{id: id, status: st}
	a.runs[id] = r
	data, err := protocol.ReadFileSafe(reqPath, protocol.MaxRequestBytes)
	var req *protocol.Request
	if err == nil {
		req, err = protocol.ParseRequest(data)
	}
	if err != nil {
		a.startTrace(r)
		a.finish(r, protocol.PhaseFailed, protocol.ReasonInvalidRequest, "recovered run has no valid request.json: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	r.req = req
	a.startTrace(r)
	a.log.Debug("recovering run", "run", id, "phase", st.Phase, "job", st.Job)
	if adopted {
		a.writeStatus(r) // the run is this agent's now
	}
	if st.Job != "" { // created before: track that Job, whatever the config says now
		if _, err := a.tracker(ctx, st.Namespace); err != nil {
			a.finish(r, protocol.PhaseFailed, protocol.ReasonForbidden, err.Error())
			return
		}
		r.namespace, r.job = st.Namespace, st.Job
		r.pendingSince = time.Now() // a restarted agent gives a waiting run its whole start timeout again
		a.inflight++
		a.watchRun(r)
		a.dirty.add(id)
	} else {
		a.enqueue(ctx, r) // a Job created just before a crash is adopted through AlreadyExists
	}
	if _, err := os.Stat(filepath.Join(a.o.Layout.RunDir(id), protocol.CancelFile)); err == nil {
		a.checkCancel(ctx, id)
	}
}

// claimGrace is how long a run directory without a status may belong to
// a claim still under way.
const claimGrace = 10 * time.Second

func claimedJustNow(dir string) bool {
	info, err := os.Stat(dir)
	return err == nil && time.Since(info.ModTime()) < claimGrace
}

// DefaultStartTimeout is how long a run may wait to start: long enough for
// a cluster autoscaler to add a node (minutes) and that node to pull a
// multi-gigabyte Mage image, short enough that a run that can never be
// scheduled fails the same hour instead of waiting forever.
const DefaultStartTimeout = 15 * time.Minute

// startTimedOut fails a run still waiting to start (no pod, unschedulable,
// pulling its image) past its start timeout: its Job is deleted, and the
// run ends StartTimeout with the last reason it waited for. The rescan
// looks at every run, so a run that gets no event is still caught.
func (a *Agent) startTimedOut(ctx context.Context, r *run, v Verdict) bool {
	limit := r.startTimeout
	if limit == 0 {
		limit = a.o.StartTimeout
	}
	waiting := v.Phase == protocol.PhasePending || v.Phase == protocol.PhaseDispatched
	if limit <= 0 || !waiting || r.pendingSince.IsZero() || time.Since(r.pendingSince) < limit {
		return false
	}
	why := "no pod yet"
	if v.Reason != "" {
		why = joinMessage(v.Reason + ": " + v.Message)
	}
	r.timedOut = fmt.Sprintf("the run did not start within %s (start timeout; job.start_timeout_seconds or --start-timeout); it was waiting: %s; its Job was deleted", limit, why)
	a.log.Warn("start timeout", "run", r.id, "job", r.job, "waited", limit, "reason", v.Reason)
	r.cancelled = true
	a.cancel(ctx, r)
	return true
}
