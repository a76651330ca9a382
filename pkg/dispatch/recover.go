package dispatch

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// Recovery rebuilds the agent's runs from two sources only: the requests
// in runs/<id>/request.json (what was asked) and the cluster (the Jobs
// the informers of this agent's instance hold, selected by the labels the
// agent set itself). A run's Job and namespace are never taken from a
// file on the volume, which every Job pod can write. Of status.json two
// facts are read back, each of which can only make the agent do less: a
// final phase with no Job left for the run (its TTL passed) means the run
// is over and is left alone; a started phase with no Job in the caches
// means its Job is looked up by name but never created again. Forging
// either gives a writer nothing it lacks already (it can delete the
// request). When the run's Job still exists, the Job decides.

// recoverRuns adopts every unfinished run found in runs/: a claim
// interrupted before the request moved is completed; a run whose Job is
// in the caches is tracked; one without is dispatched again (the Job name
// is the same, so a Job created just before a crash is adopted through
// AlreadyExists, never duplicated).
func (a *Agent) recoverRuns(ctx context.Context) {
	names, err := a.vol.runs.Entries()
	if err != nil {
		a.log.Error("read runs directory", "err", err)
		return
	}
	jobs, alive := a.jobsByRun(), map[string]bool{}
	for _, id := range names {
		if protocol.ValidateID(id) != nil {
			continue
		}
		if fi, err := a.vol.runs.Lstat(id); err != nil || !fi.IsDir() {
			continue // a link or a file: never a run
		}
		a.recoverRun(ctx, id, jobs, alive)
	}
}

// recoverRun adopts one run found on disk, unless it ended (and its Job,
// if any is left, agrees) or a live agent tracks it.
func (a *Agent) recoverRun(ctx context.Context, id string, jobs map[string]*cachedJob, alive map[string]bool) {
	var st protocol.Status
	err := a.vol.readRunJSON(id, protocol.StatusFile, &st)
	if err == nil && st.ID != id {
		err = errors.New("status.json names another run")
	}
	cached := jobs[id]
	if err == nil && st.Phase.Terminal() {
		if cached == nil || statusAgrees(st, cached.job()) {
			return
		}
		a.log.Warn("status.json disagrees with the run's Job; judging the run again", "run", id, "phase", st.Phase, "job", cached.Name)
		st.Phase, st.Reason, st.Message, st.FinishedAt = protocol.PhaseDispatched, "", "", nil
	}
	if errors.Is(err, fs.ErrNotExist) && a.vol.runHas(id, protocol.RequestFile) && a.claimedJustNow(id) {
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
	// Output fields are the agent's to write, never read back.
	st.Agent, st.Job, st.Namespace = a.o.Pod.Name, "", ""
	a.resume(ctx, id, st, cached, adopted)
}

// resume takes up a run found on disk with its status st: its Job (from
// the caches) is tracked, or it is dispatched again.
func (a *Agent) resume(ctx context.Context, id string, st protocol.Status, cached *cachedJob, adopted bool) {
	if !a.vol.runHas(id, protocol.RequestFile) {
		_ = a.vol.moveRequest(id+protocol.RequestSuffix, id) // finish an interrupted claim
	}
	r := &run{id: id, status: st}
	a.runs[id] = r
	a.live.Store(id, struct{}{})
	data, _, err := a.vol.readRunFile(id, protocol.RequestFile, protocol.MaxRequestBytes)
	r.reqBytes = int64(len(data))
	if err == nil {
		r.req, err = protocol.ParseRequest(data)
	}
	if err == nil && r.req.ID != id {
		err = errors.New("its id does not match the run directory")
	}
	a.startTrace(r)
	if err != nil {
		r.req = nil
		a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonInvalidRequest, "recovered run has no valid request.json: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	a.log.Debug("recovering run", "run", id, "phase", st.Phase, "job", cached != nil)
	if adopted {
		a.writeStatus(r) // the run is this agent's now
	}
	if cached != nil { // created before: track that Job, whatever the config says now
		r.namespace, r.job, r.jobUID = cached.Namespace, cached.Name, cached.UID
		r.status.Namespace, r.status.Job = cached.Namespace, cached.Name
		r.keepIdentity()
		r.pendingSince = time.Now() // a restarted agent gives a waiting run its whole start timeout again
		r.inflight = true
		a.inflight++
		a.watchRun(r)
		a.dirty.add(id)
	} else {
		// A Job created just before a crash is adopted through
		// AlreadyExists. A run whose status says it had started is only
		// looked up: a status can only make the agent do less.
		r.adoptOnly = st.Phase == protocol.PhaseDispatched || st.Phase == protocol.PhasePending || st.Phase == protocol.PhaseRunning
		a.enqueue(ctx, r)
	}
	if a.vol.runHas(id, protocol.CancelFile) {
		a.checkCancel(ctx, id)
	}
}

// claimGrace is how long a run directory without a status may belong to
// a claim still under way.
const claimGrace = 10 * time.Second

// claimedJustNow reports whether run id's directory (a real one, not a
// link) was made or changed within the claim grace.
func (a *Agent) claimedJustNow(id string) bool {
	info, err := a.vol.runs.Lstat(id)
	return err == nil && info.IsDir() && time.Since(info.ModTime()) < claimGrace
}
