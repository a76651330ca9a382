package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// HeartbeatInterval is how often the loop proves it runs: it stamps the
// time for /healthz and has the heartbeat file rewritten.
const HeartbeatInterval = 10 * time.Second

// stuckAfter is how long without a beat makes the loop stuck for /healthz.
const stuckAfter = 3 * HeartbeatInterval

// beat is the loop's half: stamp the time and wake the writer, never
// waiting for the file (the volume may be slow or full).
func (a *Agent) beat(now time.Time) {
	a.lastBeat.Store(now.UnixNano())
	select {
	case a.beats <- now:
	default:
	}
}

// writeHeartbeats rewrites the heartbeat file for each beat until ctx
// ends. A failed write is logged once until one succeeds again.
func (a *Agent) writeHeartbeats(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-a.beats:
			err := a.vol.agent.WriteFile(protocol.HeartbeatFile, []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o644, false)
			switch {
			case err != nil && !failing:
				a.log.Warn("heartbeat not written; Mage sees the agent as absent once its claim timeout passes", "err", err)
			case err == nil && failing:
				a.log.Info("heartbeat written again")
			}
			failing = err != nil
		}
	}
}

// Alive reports an error when the agent's loop has not beaten for
// stuckAfter (blocked on a file, a lock or a full channel), for /healthz:
// the kubelet then restarts the agent, which adopts every run.
func (a *Agent) Alive(now time.Time) error {
	last := a.lastBeat.Load()
	if last == 0 {
		return nil // still starting: /readyz tells
	}
	if age := now.Sub(time.Unix(0, last)); age > stuckAfter {
		return fmt.Errorf("the agent's loop has not run for %s", age.Round(time.Second))
	}
	return nil
}
