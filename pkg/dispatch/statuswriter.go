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

// statusWriter writes status.json files off the agent's loop, so a burst
// of transitions never holds up the next request or Job event. Runs are
// sharded over a few workers: one run's writes never overlap or reorder,
// and a newer status replaces one still waiting (the file always shows a
// state the run was in, the newest at the latest one write later).
type statusWriter struct {
	layout protocol.Layout
	log    *slog.Logger
	seed   maphash.Seed
	shards [statusWriters]statusShard
	wg     sync.WaitGroup
}

type statusShard struct {
	mu      sync.Mutex
	pending map[string]protocol.Status
	order   []string // runs in pending, oldest first
	closed  bool
	wake    chan struct{}
	retries map[string]int // failed writes of a final status, by run
}

func newStatusWriter(layout protocol.Layout, log *slog.Logger) *statusWriter {
	w := &statusWriter{layout: layout, log: log, seed: maphash.MakeSeed()}
	for i := range w.shards {
		s := &w.shards[i]
		s.pending, s.wake, s.retries = map[string]protocol.Status{}, make(chan struct{}, 1), map[string]int{}
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.work(s) }()
	}
	return w
}

// put queues st as the run's next status.json.
func (w *statusWriter) put(st protocol.Status) {
	s := &w.shards[maphash.String(w.seed, st.ID)%statusWriters]
	s.mu.Lock()
	if _, waiting := s.pending[st.ID]; !waiting {
		s.order = append(s.order, st.ID)
	}
	s.pending[st.ID] = st
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close writes everything still queued and stops the workers.
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

func (w *statusWriter) work(s *statusShard) {
	for {
		s.mu.Lock()
		if len(s.order) == 0 {
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.wake
			continue
		}
		id := s.order[0]
		s.order = s.order[1:]
		st := s.pending[id]
		delete(s.pending, id)
		if len(s.order) == 0 {
			s.order = nil // let a long burst's backing array go
		}
		s.mu.Unlock()
		st.UpdatedAt = time.Now().UTC()
		// Only the final status is worth two fsyncs: a restarted agent
		// derives every other one again from the Job and the result.
		write := protocol.ReplaceJSON
		if st.Phase.Terminal() {
			write = protocol.WriteJSONAtomic
		}
		err := write(w.layout.RunFile(id, protocol.StatusFile), st)
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
			s.pending[st.ID] = st
			s.order = append(s.order, st.ID)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	})
}
