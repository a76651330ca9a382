package dispatch

import (
	"testing"
	"time"
)

func TestAliveReportsAStuckLoop(t *testing.T) {
	t.Parallel()
	a := &Agent{}
	now := time.Now()
	if err := a.Alive(now); err != nil {
		t.Errorf("a starting agent is not stuck: %v", err)
	}
	a.beats = make(chan time.Time, 1)
	a.beat(now)
	if err := a.Alive(now.Add(stuckAfter - time.Second)); err != nil {
		t.Errorf("beat %s ago: %v", stuckAfter-time.Second, err)
	}
	if err := a.Alive(now.Add(stuckAfter + time.Second)); err == nil {
		t.Errorf("no beat for %s, and alive", stuckAfter+time.Second)
	}
}
