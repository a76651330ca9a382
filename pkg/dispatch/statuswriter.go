package dispatch

import (
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// statusWriters is how many status.json files are written at once. A
// final status is a temp file, two fsyncs and a rename (2-3 ms on a local
// disk, more on NFS); a few in parallel share the disk's flushes.
const statusWriters = 4

// statusHold is how long a non-final status waits before it is written.
// A status that replaces it meanwhile is written instead, at the first
// one's time: a burst of runs going Queued → Dispatched → Pending →
// Running writes each run's file once or twice, not four times (creating
// a file is the agent's costliest system call; in a burst of 100 the
// status files took more CPU than everything else the agent did). A
// final status is never held.
const statusHold = 250 * time.Millisecond

// statusWriter writes status.json files off the agent's loop, so a burst
// of transitions never holds up the next request or Job event. Runs are
// sharded over a few workers: one run's writes never overlap or reorder,
// and a newer status replaces one still waiting (the file always shows a
// state the run was in; a non-final state at most statusHold late, the
// final one at once).
type statusWriter struct {
	vol    *volume
	log    *slog.Logger
	seed   maphash.Seed
	hold   time.Duration
	shards [statusWriters]statusShard
	wg     sync.WaitGroup
}

type statusShard struct {
	mu      sync.Mutex
	pending map[string]*pendingStatus
	ready   []string // runs whose status is due now (final ones), oldest first
	held    []string // runs whose status is held, by due time
	closed  bool
	wake    chan struct{}
	retries map[string]int // failed writes of a final status, by run
}

// pendingStatus is a run's status waiting to be written, and when.
type pendingStatus struct {
	st    protocol.Status
	due   time.Time
	ready bool // in ready (a held one may have moved there)
}

func newStatusWriter(vol *volume, log *slog.Logger) *statusWriter {
	w := &statusWriter{vol: vol, log: log, seed: maphash.MakeSeed(), hold: statusHold}
	for i := range w.shards {
		s := &w.shards[i]
		s.pending, s.wake, s.retries = map[string]*pendingStatus{}, make(chan struct{}, 1), map[string]int{}
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.work(s) }()
	}
	return w
}

// put queues st as the run's next status.json: a final status at once, a
// non-final one after the hold.
func (w *statusWriter) put(st protocol.Status) {
	s := &w.shards[maphash.String(w.seed, st.ID)%statusWriters]
	s.mu.Lock()
	s.queue(st, w.hold)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queue records st: a final status is ready at once, a non-final one due
// after hold. The caller holds s.mu.
func (s *statusShard) queue(st protocol.Status, hold time.Duration) {
	final := st.Phase.Terminal()
	p, waiting := s.pending[st.ID]
	if !waiting {
		p = &pendingStatus{due: time.Now().Add(hold)}
		s.pending[st.ID] = p
		if !final {
			s.held = append(s.held, st.ID)
		}
	}
	p.st = st
	if final && !p.ready {
		p.ready = true
		s.ready = append(s.ready, st.ID)
	}
}

// close writes everything still queued, held or not, and stops the
// workers.
func (w *statusWriter) close() {
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	w.wg.Wait()
}

// next takes the status to write now, or says how long to wait (0: until
// woken); done once closed with nothing left. The caller holds s.mu.
func (s *statusShard) next(now time.Time) (st protocol.Status, ok bool, wait time.Duration, done bool) {
	if len(s.ready) > 0 {
		id := s.ready[0]
		s.ready = s.ready[1:]
		if len(s.ready) == 0 {
			s.ready = nil // let a long burst's backing array go
		}
		p := s.pending[id]
		delete(s.pending, id)
		return p.st, true, 0, false
	}
	for len(s.held) > 0 {
		id := s.held[0]
		p, waiting := s.pending[id]
		if waiting && !p.ready && !s.closed && now.Before(p.due) {
			return protocol.Status{}, false, p.due.Sub(now), false
		}
		s.held = s.held[1:]
		if len(s.held) == 0 {
			s.held = nil
		}
		if waiting && !p.ready { // else written already, or moved to ready
			delete(s.pending, id)
			return p.st, true, 0, false
		}
	}
	return protocol.Status{}, false, 0, s.closed
}

func (w *statusWriter) work(s *statusShard) {
	var timer *time.Timer
	for {
		s.mu.Lock()
		st, ok, wait, done := s.next(time.Now())
		s.mu.Unlock()
		switch {
		case done:
			return
		case !ok && wait == 0:
			<-s.wake
			continue
		case !ok:
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-s.wake:
			case <-timer.C:
			}
			continue
		}
		w.write(s, st)
	}
}

func (w *statusWriter) write(s *statusShard, st protocol.Status) {
	id := st.ID
	st.UpdatedAt = time.Now().UTC()
	// Only the final status is worth two fsyncs: a restarted agent
	// derives every other one again from the Job and the result.
	err := w.vol.writeRunJSON(id, protocol.StatusFile, st, st.Phase.Terminal())
	switch {
	case err != nil && st.Phase.Terminal():
		w.retryLater(s, st, err)
	case err != nil:
		w.log.Error("write status", "run", id, "err", err) // derived again on the next transition or restart
	case st.Phase.Terminal():
		s.mu.Lock()
		n := s.retries[id]
		delete(s.retries, id)
		s.mu.Unlock()
		if n > 0 {
			w.log.Info("final status written after failed attempts", "run", id, "failed", n)
		}
	}
}

// maxRetryDelay caps the wait between attempts at a final status.
const maxRetryDelay = 30 * time.Second

// retryLater queues a final status again after a backoff: a full or
// failing volume must not leave a finished run non-terminal on disk. A
// newer status put meanwhile wins.
func (w *statusWriter) retryLater(s *statusShard, st protocol.Status, err error) {
	s.mu.Lock()
	n := s.retries[st.ID] + 1
	s.retries[st.ID] = n
	s.mu.Unlock()
	delay := min(100*time.Millisecond<<min(n, 9), maxRetryDelay)
	if n == 1 || n%10 == 0 {
		w.log.Error("write final status; retrying until it succeeds", "run", st.ID, "err", err, "attempt", n, "next_in", delay)
	}
	time.AfterFunc(delay, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return // a restarted agent derives it from the Job
		}
		if _, newer := s.pending[st.ID]; !newer {
			s.queue(st, 0) // final: ready at once
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	})
}
