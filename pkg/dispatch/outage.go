package dispatch

import (
	"context"
	"time"
)

// An API server outage breaks every watch. client-go's reflectors then
// retry with a backoff that grows to 30 s (plus jitter), so after a 20 s
// outage they may stay blind for most of another minute. The agent does
// not wait for them: the first request that fails below HTTP
// (Options.APIErrors) starts one probe of the API server (GET /version,
// once a second, only while it is unreachable); when it answers, the loop
// restarts every tracker, which lists afresh, and refreshes every run.

// probeInterval is how often an unreachable API server is asked again.
const probeInterval = time.Second

// startProbe starts the probe unless one is running.
func (a *Agent) startProbe(ctx context.Context) {
	if !a.probing.CompareAndSwap(false, true) {
		return
	}
	a.log.Warn("Kubernetes API unreachable; probing it every second")
	a.workers.Go(func() { a.probeAPI(ctx) })
}

func (a *Agent) probeAPI(ctx context.Context) {
	defer a.probing.Store(false)
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := a.o.Client.Discovery().ServerVersion(); err == nil {
			select {
			case a.apiBack <- struct{}{}:
			default:
			}
			return
		}
	}
}

// restartTrackers re-lists every namespace after an outage; each
// namespace's runs are judged again from the fresh caches once they sync
// (onSynced). It runs on the loop and never waits for a list.
func (a *Agent) restartTrackers(ctx context.Context) {
	a.log.Info("Kubernetes API reachable again; re-listing jobs and pods", "namespaces", len(a.trackers))
	for ns, old := range a.trackers {
		old.stop()
		delete(a.trackers, ns)
		a.tracker(ctx, ns).waiting = old.waiting // the runs are judged again once it syncs
	}
}
