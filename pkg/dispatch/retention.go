package dispatch

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
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
		runs, rejected := prune(a.o.Layout, time.Now(), a.o.Retention)
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
// is not final is never removed, however old.
func prune(l protocol.Layout, now time.Time, retention time.Duration) (runs, rejected int) {
	cutoff := now.Add(-retention)
	entries, _ := os.ReadDir(l.Runs())
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || protocol.ValidateID(id) != nil {
			continue
		}
		var st protocol.Status
		if protocol.ReadJSON(l.RunFile(id, protocol.StatusFile), &st) != nil || !st.Phase.Terminal() {
			continue
		}
		if newestUnder(l.RunDir(id)).After(cutoff) {
			continue
		}
		if os.RemoveAll(l.RunDir(id)) == nil {
			runs++
		}
	}
	for _, dir := range []string{filepath.Join(l.Requests(), rejectedDir), filepath.Join(l.Runs(), squattedDir)} {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if info, err := f.Info(); err == nil && info.ModTime().Before(cutoff) && os.RemoveAll(filepath.Join(dir, f.Name())) == nil {
				rejected++
			}
		}
	}
	return runs, rejected
}

// newestUnder is the latest modification time of dir and the entries
// directly in it (links are not followed).
func newestUnder(dir string) time.Time {
	newest := time.Time{}
	if info, err := os.Lstat(dir); err == nil {
		newest = info.ModTime()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	return newest
}
