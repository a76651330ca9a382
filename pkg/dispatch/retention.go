package dispatch

import (
	"context"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/share"
)

// DefaultRetention keeps finished runs and rejected requests a week.
const DefaultRetention = 7 * 24 * time.Hour

// pruneEvery is how often the pruner looks (and once at start).
const pruneEvery = time.Hour

// pruneLoop removes what has outlived the retention until ctx ends, off
// the agent's loop (a large runs/ takes a while to walk).
func (a *Agent) pruneLoop(ctx context.Context) {
	if a.o.Retention <= 0 {
		return
	}
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		runs, rejected := prune(a.vol, time.Now(), a.o.Retention, func(id string) bool { _, ok := a.live.Load(id); return ok })
		if runs+rejected > 0 {
			a.log.Info("pruned", "runs", runs, "rejected_requests", rejected, "older_than", a.o.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// prune removes the run directories whose final status (and every file
// the run wrote at its top) is older than retention, and the rejected
// request files and squatted run directories as old. A run whose status
// is not final, or that the agent tracks (live: whatever its status.json
// says, since any pod can write it), is never removed, however old.
// Everything is removed relative to the directories the agent opened, a
// link never followed.
func prune(v *volume, now time.Time, retention time.Duration, live func(id string) bool) (runs, rejected int) {
	cutoff := now.Add(-retention)
	names, _ := v.runs.Entries()
	for _, id := range names {
		if protocol.ValidateID(id) != nil || live(id) {
			continue
		}
		if fi, err := v.runs.Lstat(id); err != nil || !fi.IsDir() {
			continue
		}
		var st protocol.Status
		if v.readRunJSON(id, protocol.StatusFile, &st) != nil || !st.Phase.Terminal() {
			continue
		}
		if newestUnder(v, id).After(cutoff) {
			continue
		}
		if v.runs.RemoveAll(id) == nil {
			runs++
		}
	}
	for _, dir := range []*share.Dir{v.rejected, v.squatted} {
		files, _ := dir.Entries()
		for _, name := range files {
			if info, err := dir.Lstat(name); err == nil && info.ModTime().Before(cutoff) && dir.RemoveAll(name) == nil {
				rejected++
			}
		}
	}
	return runs, rejected
}

// newestUnder is the latest modification time of run id's directory and
// the entries directly in it (links are not followed).
func newestUnder(v *volume, id string) time.Time {
	newest := time.Time{}
	if info, err := v.runs.Lstat(id); err == nil {
		newest = info.ModTime()
	}
	d, err := v.runDir(id)
	if err != nil {
		return newest
	}
	defer d.Close()
	names, _ := d.Entries()
	for _, name := range names {
		if info, err := d.Lstat(name); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest
}
