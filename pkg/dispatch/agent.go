package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/policy"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry"
	"github.com/magekube/magekube/pkg/telemetry/metrics"
	"github.com/magekube/magekube/pkg/telemetry/otlp"
)

// Options configure the agent's engine.
type Options struct {
	Layout  protocol.Layout
	Builder jobspec.Builder
	Policy  policy.Policy
	Client  kubernetes.Interface
	// Pod is the server pod the Jobs inherit from (read once at start).
	Pod *corev1.Pod
	// MaxInflight bounds runs with a live Job; more wait as Queued.
	MaxInflight int
	// MaxQueued and MaxQueuedBytes bound the runs waiting for an
	// in-flight slot, and the bytes of their request files: a run past
	// either fails QueueFull, naming the cap, so no burst of requests
	// holds more of the agent's memory than the caps allow.
	MaxQueued      int
	MaxQueuedBytes int64
	// Rescan is the safety-net interval for re-reading the directories
	// (inotify misses writes made on other nodes of an NFS-like volume).
	Rescan time.Duration
	// APIErrors, when set, signals requests that failed below HTTP
	// (kube.Outages); the agent then probes the API server and re-lists
	// as soon as it answers (see outage.go).
	APIErrors <-chan struct{}
	// StartTimeout fails a run that has not started this long after its
	// Job was created (0: wait forever); job.start_timeout_seconds
	// overrides it per run.
	StartTimeout time.Duration
	// Retention is how long finished run directories and rejected
	// requests are kept (0: forever).
	Retention time.Duration
	// Tracer exports each run's trace when it ends; nil: none.
	Tracer *otlp.Tracer
	// Metrics, when set, count runs and latencies.
	Metrics *metrics.Metrics
	// Events, when set, records Kubernetes Events on the runs' Jobs.
	Events record.EventRecorder
	Log    *slog.Logger
}

// watchBuffer is how many file events wait for the loop before the
// watcher stops reading inotify (whose own queue then holds the rest).
const watchBuffer = 1024

// Agent turns request files into Jobs and Job events into status files.
// One goroutine (Run's loop) owns all run state; informer handlers and
// create workers only hand it run ids and results.
type Agent struct {
	o   Options
	log *slog.Logger
	vol *volume
	// keyReachable: a block may read its runner's key (policy.KeyReachable),
	// so a sealed success counts only once the main container has ended.
	keyReachable bool
	runs         map[string]*run
	live         sync.Map // the ids of runs, for the pruner (off the loop)
	queue        []string
	inflight     int
	queued       int64 // bytes of the queued runs' request files
	trackers     map[string]*tracker
	dirty        *idSet
	created      chan createResult
	synced       chan trackerSync
	status       *statusWriter
	watcher      *fsnotify.Watcher
	workers      sync.WaitGroup
	ready        atomic.Bool
	probing      atomic.Bool       // an API probe is running (see outage.go)
	apiBack      chan struct{}     // the probe saw the API server answer again
	foreign      map[string]string // unfinished runs of other live agents: run → agent pod
	lastBeat     atomic.Int64      // unix nanoseconds of the loop's last beat
	beats        chan time.Time    // the loop's beats, for the heartbeat writer
	claims       chan struct{}     // claims made, not yet synced (see syncClaims)
	// largeIntake lets one intake worker at a time take a large request.
	largeIntake chan struct{}
	in          intakeState // request files on their way in (the loop's)
}

// run is the in-memory state of one unfinished run.
type run struct {
	id        string
	req       *protocol.Request
	status    protocol.Status
	namespace string
	job       string
	creating  bool
	watched   bool
	jobCached bool // the informer cache has shown the Job
	// unsealedSeen: an unsealed result.json was logged once already.
	unsealedSeen bool
	// startTimeout is the run's own limit (0: the agent's); pendingSince
	// is when its wait to start began (Job created, or this agent's start).
	startTimeout time.Duration
	pendingSince time.Time
	queued       bool // waiting in the queue for an in-flight slot
	// adoptOnly: the run had started before this agent (its status said
	// so) but no Job of it is in the caches: its Job is looked up by name,
	// never created again (adoptJob).
	adoptOnly bool
	reqBytes  int64 // the request file's size, counted while queued
	inflight  bool  // holds an in-flight slot (from dispatch to the end)
	// config is the run's resolved executor config (a queued run's Job is
	// built from it).
	config *execconfig.Config
	// stop: the agent is deleting the run's Job, and how the run ends.
	stop *Stop
	// pendingReason is what magekube_runs_pending counts the run under.
	pendingReason string
	// container is the Job's main container (for span attributes).
	container  string
	jobUID     types.UID
	trace      telemetry.SpanContext
	parentSpan telemetry.SpanID
	times      timeline
}

// New checks the options and returns an agent ready to Run.
func New(o Options) (*Agent, error) {
	if o.Client == nil || o.Pod == nil {
		return nil, errors.New("agent needs a Kubernetes client and the server pod")
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 100
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.Rescan <= 0 {
		o.Rescan = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	vol, err := openVolume(o.Layout)
	if err != nil {
		return nil, err
	}
	keyReachable := true // no Mage container found: trust no result early
	if mage, err := jobspec.MageContainer(o.Pod, o.Builder.Settings.Default()); err == nil {
		keyReachable = o.Policy.KeyReachable(o.Pod, mage)
	}
	return &Agent{
		o: o, log: o.Log, vol: vol, keyReachable: keyReachable,
		runs: map[string]*run{}, trackers: map[string]*tracker{}, foreign: map[string]string{},
		dirty: newIDSet(), created: make(chan createResult, 64), synced: make(chan trackerSync, 8), apiBack: make(chan struct{}, 1),
		beats: make(chan time.Time, 1), claims: make(chan struct{}, 1), in: newIntakeState(), largeIntake: make(chan struct{}, 1),
	}, nil
}

// Ready reports whether the agent has recovered its runs and its
// informers are synced (for /readyz).
func (a *Agent) Ready() bool { return a.ready.Load() }

// Run serves until ctx ends. On return no goroutine of the agent is left;
// Jobs keep running, and the next agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	w, err := fsnotify.NewBufferedWatcher(watchBuffer)
	if err != nil {
		return fmt.Errorf("watch %s: %w", a.o.Layout.Root, err)
	}
	a.watcher = w
	defer w.Close()
	defer a.vol.close() // last: the status writer below writes through it
	a.status = newStatusWriter(a.vol, a.log)
	defer a.status.close() // after the workers below: every status is written
	for _, d := range []string{a.o.Layout.Requests(), a.o.Layout.Runs()} {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer func() {
		stopWork()
		a.workers.Wait()
		for _, t := range a.trackers {
			t.stop()
		}
	}()
	if err := a.trackNamespaces(workCtx); err != nil {
		return err
	}
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		a.writeHeartbeats(workCtx)
	}()
	a.workers.Go(func() { a.pruneLoop(workCtx) })
	a.workers.Go(func() { a.syncClaims(workCtx) })
	for range intakeWorkers {
		a.workers.Go(func() { a.takeRequests(workCtx) })
	}
	a.recoverRuns(workCtx)
	a.scanRequests()
	a.settleIntake(workCtx)
	a.beat(time.Now())
	a.ready.Store(true)
	a.log.Info("agent ready", "dir", a.o.Layout.Root, "runs", len(a.runs))
	return a.loop(workCtx)
}

// trackNamespaces starts the trackers of the agent's namespace and of
// every namespace the policy names, and waits for their caches: recovery
// finds runs' Jobs in them, never through a file. The agent's own
// namespace must sync; another that cannot (no RBAC there yet) is logged,
// and its runs are adopted by name when they are dispatched again.
func (a *Agent) trackNamespaces(ctx context.Context) error {
	namespaces := []string{a.o.Pod.Namespace}
	for _, ns := range a.o.Policy.Namespaces {
		if ns != "*" && ns != a.o.Pod.Namespace && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	for _, ns := range namespaces {
		a.tracker(ctx, ns)
	}
	for range namespaces {
		select {
		case s := <-a.synced:
			if s.err != nil && s.ns == a.o.Pod.Namespace {
				return s.err
			}
			a.onSynced(ctx, s)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (a *Agent) loop(ctx context.Context) error {
	rescan := time.NewTicker(a.o.Rescan)
	defer rescan.Stop()
	heartbeat := time.NewTicker(HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping; Jobs keep running and are adopted on restart", "runs", len(a.runs))
			return nil
		case ev, ok := <-a.watcher.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			a.intake(a.fileEvents(ctx, ev))
		case it := <-a.in.taken:
			a.onTaken(ctx, it)
		case err := <-a.watcher.Errors:
			a.log.Warn("file watcher", "err", err) // overflow: the rescan catches up
		case <-rescan.C:
			a.scanRequests()
			a.adoptOrphans(ctx)
			for id := range a.runs {
				a.checkCancel(ctx, id)
				a.dirty.add(id)
			}
			a.refreshDirty(ctx)
		case <-a.dirty.wake:
			a.refreshDirty(ctx)
		case res := <-a.created:
			a.onCreated(ctx, res)
		case s := <-a.synced:
			a.onSynced(ctx, s)
		case <-a.o.APIErrors:
			a.startProbe(ctx)
		case <-a.apiBack:
			a.restartTrackers(ctx)
		case now := <-heartbeat.C:
			a.beat(now)
		}
		a.handOut()
		a.o.Metrics.SetLoad(len(a.queue), a.inflight)
	}
}

// fileEvents handles ev and the watcher events already waiting, for at
// most intakeDrain, and returns the request files among them. A file
// named twice is taken once: intake skips a file on its way in, and a
// worker a run the loop already has.
func (a *Agent) fileEvents(ctx context.Context, ev fsnotify.Event) []string {
	var names []string
	until := time.Now().Add(intakeDrain)
	for {
		if name, isRequest := a.fileEvent(ctx, ev); isRequest {
			names = append(names, name)
		}
		if len(names) >= maxIntakeBatch || (len(names) > 0 && time.Now().After(until)) {
			return names
		}
		select {
		case next, ok := <-a.watcher.Events:
			if !ok {
				return names // the loop sees the closed channel next
			}
			ev = next
		default:
			return names
		}
	}
}

// intakeDrain bounds how long fileEvents gathers events: while a burst
// is still being written its events keep coming, and the files already
// seen go to the intake workers meanwhile.
const intakeDrain = 2 * time.Millisecond

// maxIntakeBatch bounds the names fileEvents gathers, so Job events and
// results are handled between the parts of a very large burst.
const maxIntakeBatch = 256

// idSet coalesces run ids to refresh; informer handlers add, the loop
// drains. Adding never blocks.
type idSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	wake chan struct{}
}

func newIDSet() *idSet { return &idSet{ids: map[string]struct{}{}, wake: make(chan struct{}, 1)} }

func (s *idSet) add(id string) {
	s.mu.Lock()
	s.ids[id] = struct{}{}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *idSet) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	clear(s.ids)
	return out
}
