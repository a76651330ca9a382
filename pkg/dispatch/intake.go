package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/share"
)

// rejectedDir keeps request files that cannot even name a run, so they
// are not read again on every rescan.
const rejectedDir = ".rejected"

// fileEvent sorts a watcher event: a request file to take in (returned),
// or a file in a run directory (result, cancel) that refreshes the run.
func (a *Agent) fileEvent(ctx context.Context, ev fsnotify.Event) (string, bool) {
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	switch {
	case dir == a.o.Layout.Requests():
		if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) {
			return name, true
		}
	case filepath.Dir(dir) == a.o.Layout.Runs():
		id := filepath.Base(dir)
		if _, ok := a.runs[id]; ok && (name == protocol.CancelFile || name == protocol.ResultFile) {
			if name == protocol.CancelFile {
				a.checkCancel(ctx, id)
			}
			a.dirty.add(id)
		}
	}
	return "", false
}

// scanRequests takes in every request file present: the start-up pass and
// the safety net for events inotify cannot see.
func (a *Agent) scanRequests() {
	names, err := a.vol.requests.Entries()
	if err != nil {
		a.log.Error("read requests directory", "err", err)
		return
	}
	a.intake(names)
}

// intakeWorkers is how many request files are taken at once. Taking one
// is a handful of metadata operations on the shared volume (open, read,
// mkdir, rename, the project's metadata.yaml files): on NFS each is a
// network round trip, and on a local disk shared with an fsync-heavy
// neighbour (etcd) each may wait for the journal. In parallel those waits
// overlap; the loop only hands the files out and admits the runs.
const intakeWorkers = 8

// intakeItem is one request file on its way in: seen by the loop, taken
// by an intake worker (t), then admitted by the loop.
type intakeItem struct {
	f               requestFile
	t               takenRequest // written by the worker, read by the loop once it is handed back
	taken, admitted bool
}

// intakeState is the loop's view of the request files on their way in.
// The loop never waits for a file: it hands files to the intake workers
// and admits each run when its worker hands it back, so a burst's first
// Jobs are created while its last files are still being written.
type intakeState struct {
	seen   map[string]bool // request names on their way in: seen, not yet admitted
	order  []*intakeItem   // the same, in the order seen: admission order
	toTake []*intakeItem   // not yet handed to a worker
	work   chan *intakeItem
	taken  chan *intakeItem
}

func newIntakeState() intakeState {
	return intakeState{seen: map[string]bool{}, work: make(chan *intakeItem, intakeWorkers), taken: make(chan *intakeItem, intakeWorkers)}
}

// intake queues request files for the intake workers, each once while it
// is on its way in (one file's events come in pairs, and a rescan finds
// files whose events are being handled).
func (a *Agent) intake(names []string) {
	for _, name := range names {
		id, ok := protocol.RequestID(name)
		if !ok || a.in.seen[name] { // a temporary, hidden or foreign file, or one on its way in
			continue
		}
		_, active := a.runs[id]
		it := &intakeItem{f: requestFile{name: name, id: id, active: active}}
		a.in.seen[name] = true
		a.in.order = append(a.in.order, it)
		a.in.toTake = append(a.in.toTake, it)
	}
}

// handOut hands files to the workers while the work channel has room,
// without waiting: the loop calls it after each of its turns, so the
// files of a burst reach the workers at once. When the channel is full
// the workers are busy, and each hands a file back (a turn of the loop)
// before it takes the next.
func (a *Agent) handOut() {
	for len(a.in.toTake) > 0 {
		select {
		case a.in.work <- a.in.toTake[0]:
			a.in.toTake[0] = nil
			a.in.toTake = a.in.toTake[1:]
		default:
			return
		}
	}
}

// takeRequests is an intake worker: it reads, claims and prepares the
// files the loop hands out, and hands them back.
func (a *Agent) takeRequests(ctx context.Context) {
	for {
		select {
		case it := <-a.in.work:
			it.t = a.take(it.f)
			select {
			case a.in.taken <- it:
			case <-ctx.Done():
				return // a claimed run is recovered by the next agent
			}
		case <-ctx.Done():
			return
		}
	}
}

// onTaken admits a run its worker handed back: in the order the files
// were seen, or at once when the order decides nothing (admitsInOrder).
// Every problem ends as a Failed status when the file names a usable id,
// else as a log line and the file moved to requests/.rejected/. Nothing
// stops the agent.
func (a *Agent) onTaken(ctx context.Context, it *intakeItem) {
	it.taken = true
	if !a.admitsInOrder(len(a.in.seen)) {
		a.admitItem(ctx, it)
	}
	for len(a.in.order) > 0 && a.in.order[0].taken {
		a.admitItem(ctx, a.in.order[0])
		a.in.order[0] = nil
		a.in.order = a.in.order[1:]
	}
}

// admitItem admits one taken file's run, once.
func (a *Agent) admitItem(ctx context.Context, it *intakeItem) {
	if it.admitted {
		return
	}
	it.admitted = true
	delete(a.in.seen, it.f.name)
	if it.t.r != nil {
		a.admit(ctx, it.t)
		a.claimsMade()
	}
}

// settleIntake takes in every file seen so far before it returns: the
// start-up scan's requests are in before the agent says it is ready.
func (a *Agent) settleIntake(ctx context.Context) {
	for len(a.in.order) > 0 {
		a.handOut()
		select {
		case it := <-a.in.taken:
			a.onTaken(ctx, it)
		case <-ctx.Done():
			return
		}
	}
}

// admitsInOrder reports whether n requests on their way in must be
// admitted in their order: the order decides which runs wait in the
// queue for an in-flight slot. When nothing queues and all n fit in the
// free slots, every run is dispatched at once whatever the order, and a
// request one slow take (a file operation waiting for the disk's
// journal) would hold up need not wait for it.
func (a *Agent) admitsInOrder(n int) bool {
	return len(a.queue) > 0 || a.inflight+n > a.o.MaxInflight
}

// requestFile is a request file's name, the run id it names, and whether
// the loop already has a run of that id.
type requestFile struct {
	name, id string
	active   bool
}

// takenRequest is one request taken by this agent: its run, prepared, or
// why it cannot run.
type takenRequest struct {
	r    *run
	prep prepared
}

// claimsMade asks the claim syncer for a directory sync of the claims
// made so far; it never waits.
func (a *Agent) claimsMade() {
	select {
	case a.claims <- struct{}{}:
	default: // a sync is asked for already, and covers these claims too
	}
}

// syncClaims makes claims durable off the loop, one directory sync for
// every claim made while the last one ran: the sync waits for the disk's
// journal, which on a disk shared with etcd takes milliseconds that the
// next requests of a burst must not wait for. Nothing waits for it:
// a crash before the sync only repeats a claim, and the run adopts its
// Job (same name). On the way out it makes the last claims durable.
func (a *Agent) syncClaims(ctx context.Context) {
	for {
		select {
		case <-a.claims:
		case <-ctx.Done():
			select {
			case <-a.claims:
			default:
				return
			}
		}
		if err := a.vol.runs.Sync(); err != nil {
			a.log.Warn("sync claims", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// take reads, claims and prepares one request file; a zero takenRequest
// when there is nothing to take (yet). It touches no agent state but the
// files (an intake worker runs it).
func (a *Agent) take(f requestFile) takenRequest {
	if fi, err := a.vol.requests.Lstat(f.name); err == nil && fi.Size() > largeRequest {
		a.largeIntake <- struct{}{} // one large request parsed at a time
		defer func() { <-a.largeIntake }()
	}
	c, ok := a.claim(f)
	if !ok {
		return takenRequest{}
	}
	t := takenRequest{r: c.r, prep: c.problem()}
	if t.prep.reason == "" {
		c.r.req = c.req
	}
	a.startTrace(c.r)
	if c.r.req != nil {
		t.prep = a.prepare(c.r)
		c.r.dropBuildInputs() // resolved: a run waiting for its turn keeps no variables
	}
	return t
}

// largeRequest is the size past which request files are taken one at a
// time: a Mage request is 1-2 KB, and a hostile one of 1 MiB costs about
// 5 MiB once parsed, which eight workers at once would multiply.
const largeRequest = 64 << 10

// claimedRequest is one request file claimed: its run, and the request or
// why it cannot be read.
type claimedRequest struct {
	r        *run
	name     string
	req      *protocol.Request
	readErr  error
	parseErr error
}

// problem is why the claimed request cannot run, if it cannot.
func (c claimedRequest) problem() prepared {
	switch {
	case c.readErr != nil:
		return prepared{reason: protocol.ReasonInvalidRequest, message: c.readErr.Error()}
	case c.parseErr != nil:
		return prepared{reason: protocol.ReasonInvalidRequest, message: "invalid request: " + strings.ReplaceAll(c.parseErr.Error(), "\n", "; ")}
	case c.req.ID != c.r.id:
		return prepared{reason: protocol.ReasonInvalidRequest, message: fmt.Sprintf("id: %q does not match the file name %s", c.req.ID, c.name)}
	}
	return prepared{}
}

// claim reads and claims one request file; false when there is nothing to
// take (yet).
func (a *Agent) claim(f requestFile) (claimedRequest, bool) {
	name, id := f.name, f.id
	if err := protocol.ValidateID(id); err != nil {
		a.reject(name, fmt.Errorf("file name: %w", err))
		return claimedRequest{}, false
	}
	if f.active {
		if _, err := a.vol.requests.Lstat(name); err != nil {
			return claimedRequest{}, false // the claimed file's own event, seen late
		}
		a.reject(name, fmt.Errorf("run %s exists already; a run id is used once", id))
		return claimedRequest{}, false
	}
	seen := time.Now()
	data, young, err := a.readRequestFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return claimedRequest{}, false // taken meanwhile (another agent, or a repeated event)
	}
	req, perr := protocol.ParseRequest(data)
	if err == nil && perr != nil && young && isIncomplete(data) {
		return claimedRequest{}, false // still being written without a rename; the next event or rescan retries
	}
	if !a.claimDir(name, id) {
		return claimedRequest{}, false
	}
	r := &run{id: id, status: a.newStatus(id), times: timeline{seen: seen, claimed: time.Now()}, reqBytes: int64(len(data))}
	return claimedRequest{r: r, name: name, req: req, readErr: err, parseErr: perr}, true
}

// claimDir makes the run's directory and moves the request into it;
// false when another agent has it, or it is a duplicate (then rejected).
func (a *Agent) claimDir(name, id string) bool {
	err := a.vol.claim(name, id)
	if errors.Is(err, protocol.ErrClaimed) && a.squatted(id) {
		err = a.vol.claim(name, id)
	}
	switch {
	case errors.Is(err, protocol.ErrClaimed):
		// Another agent may be between its mkdir and its rename: only a
		// finished claim makes this file a duplicate.
		if a.vol.runHas(id, protocol.RequestFile) {
			a.reject(name, fmt.Errorf("run %s exists already; a run id is used once", id))
		}
		return false
	case err != nil:
		a.log.Error("claim request", "run", id, "err", err)
		return false
	}
	return true
}

// admit registers a taken run and queues or dispatches it, or fails it
// with what is wrong with its request or config.
func (a *Agent) admit(ctx context.Context, t takenRequest) {
	r := t.r
	a.runs[r.id] = r
	a.live.Store(r.id, struct{}{})
	if t.prep.reason != "" {
		a.finish(ctx, r, protocol.PhaseFailed, t.prep.reason, t.prep.message)
		return
	}
	a.writeStatus(r)
	a.enqueuePrepared(ctx, r, t.prep.job)
}

// readRequestFile reads requests/<name>: a regular file (no link
// followed, no FIFO blocked on) of at most MaxRequestBytes. young reports
// a file modified in the last two seconds.
func (a *Agent) readRequestFile(name string) (data []byte, young bool, err error) {
	data, fi, err := a.vol.requests.ReadFile(name, protocol.MaxRequestBytes)
	switch {
	case errors.Is(err, share.ErrNotRegular):
		return nil, false, fmt.Errorf("request file: %w; write a regular file (temp name, then rename)", err)
	case err != nil:
		return nil, false, err
	}
	return data, time.Since(fi.ModTime()) < 2*time.Second, nil
}

// isIncomplete reports JSON cut short, as a writer mid-write leaves it
// (a decoder reports io.ErrUnexpectedEOF for a value cut short, io.EOF
// for none).
func isIncomplete(data []byte) bool {
	var v any
	err := json.NewDecoder(bytes.NewReader(data)).Decode(&v)
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// reject moves a request file that names no usable run aside, into the
// requests/.rejected directory the agent opened at start (never through a
// link a writer planted at its name).
func (a *Agent) reject(name string, why error) {
	err := a.vol.requests.Rename(name, a.vol.rejected, name)
	a.log.Error("rejected request file", "file", name, "err", why, "moved_to", a.vol.rejected.Path(), "move_err", err)
}

func (a *Agent) newStatus(id string) protocol.Status {
	now := time.Now().UTC()
	return protocol.Status{APIVersion: protocol.APIVersion, ID: id, Phase: protocol.PhaseQueued, CreatedAt: now, UpdatedAt: now, Agent: a.o.Pod.Name}
}

// squatted moves aside a run directory that exists without a request in
// it past the claim grace: not a claim under way but a directory some pod
// made for a run id it guessed, to take over that run's files. The
// request then gets a fresh directory.
func (a *Agent) squatted(id string) bool {
	if a.vol.runHas(id, protocol.RequestFile) || a.claimedJustNow(id) {
		return false
	}
	to := fmt.Sprintf("%s.%d", id, time.Now().UnixNano())
	if err := a.vol.runs.Rename(id, a.vol.squatted, to); err != nil {
		a.log.Error("run directory made before its request; cannot move it aside", "run", id, "err", err)
		return false
	}
	a.log.Warn("run directory made before its request (by a pod?); moved aside", "run", id, "moved_to", a.vol.squatted.Path()+"/"+to)
	return true
}

// squattedDir keeps run directories made before their request.
const squattedDir = ".squatted"
