package dispatch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

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
func (a *Agent) recoverRun(ctx context.Context, id string, jobs map[string]*cachedJob, alive map[string]bool) {
	var st protocol.Status
	err := protocol.ReadJSON(a.o.Layout.RunFile(id, protocol.StatusFile), &st)
	if err == nil && st.Phase.Terminal() {
		cached := jobs[id]
		if cached == nil {
			return
		}
		job := cached.job()
		if statusAgrees(st, job) {
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
	a.resume(ctx, id, st, adopted)
}

// resume takes up a run found on disk with its status st: its Job is
// tracked, or it is dispatched again.
func (a *Agent) resume(ctx context.Context, id string, st protocol.Status, adopted bool) {
	reqPath := a.o.Layout.RunFile(id, protocol.RequestFile)
	if _, err := os.Stat(reqPath); errors.Is(err, fs.ErrNotExist) {
		_ = os.Rename(a.o.Layout.RequestPath(id), reqPath) // finish an interrupted claim
	}
	r := &run{id: id, status: st}
	a.runs[id] = r
	data, err := protocol.ReadFileSafe(reqPath, protocol.MaxRequestBytes)
	if err == nil {
		r.req, err = protocol.ParseRequest(data)
	}
	a.startTrace(r)
	if err != nil {
		r.req = nil
		a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonInvalidRequest, "recovered run has no valid request.json: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	a.log.Debug("recovering run", "run", id, "phase", st.Phase, "job", st.Job)
	if adopted {
		a.writeStatus(r) // the run is this agent's now
	}
	if st.Job != "" { // created before: track that Job, whatever the config says now
		a.tracker(ctx, st.Namespace) // judged once its caches are synced
		r.namespace, r.job = st.Namespace, st.Job
		r.keepIdentity()
		r.pendingSince = time.Now() // a restarted agent gives a waiting run its whole start timeout again
		r.inflight = true
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
