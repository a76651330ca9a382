package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"

	"github.com/magekube/magekube/pkg/protocol"
)

// tracker holds the label-selected Job and Pod informers of one namespace.
type tracker struct {
	// jobs and pods hold compact records (cache.go); pods are indexed by
	// run id, so a run's pods are found without a scan.
	jobs, pods cache.Indexer
	// refusals holds the FailedCreate Events on the namespace's Jobs
	// (refusal.go), indexed by Job UID.
	refusals cache.Indexer
	cancel   context.CancelFunc
	done     chan struct{}
	// synced: the caches hold the namespace's Jobs and pods. Until then
	// the namespace's runs are not judged, and creates wait in waiting.
	synced  bool
	waiting []waitingCreate
}

// waitingCreate is a Job whose create waits for its namespace's caches.
type waitingCreate struct {
	id  string
	job *batchv1.Job
}

// trackerSync is a sync waiter's report to the loop.
type trackerSync struct {
	ns  string
	t   *tracker
	err error
}

// syncTimeout bounds a namespace's first list; past it the agent's RBAC
// is the likely cause.
const syncTimeout = time.Minute

func (t *tracker) stop() {
	t.cancel()
	<-t.done
}

// tracker returns the namespace's tracker, starting it on first use. It
// never waits: a goroutine waits for the caches and tells the loop
// (onSynced).
func (a *Agent) tracker(ctx context.Context, ns string) *tracker {
	if t, ok := a.trackers[ns]; ok {
		return t
	}
	t, synced, err := a.startTracker(ctx, ns)
	if err != nil { // only a handler registration on a stopped informer fails
		a.log.Error("start watching jobs and pods", "namespace", ns, "err", err)
	}
	a.trackers[ns] = t
	a.workers.Go(func() {
		res := trackerSync{ns: ns, t: t, err: err}
		if err == nil {
			res.err = waitSynced(ctx, synced, ns)
		}
		select {
		case a.synced <- res:
		case <-ctx.Done():
		}
	})
	return t
}

// startTracker starts the namespace's informers, trimmed and selected by
// this agent's labels.
func (a *Agent) startTracker(ctx context.Context, ns string) (*tracker, []cache.InformerSynced, error) {
	selector := labels.Set{jobspec.LabelManagedBy: jobspec.ManagedByValue, jobspec.LabelInstance: a.o.Builder.Settings.Default().Instance}.String()
	jobs := cache.NewSharedIndexInformerWithOptions(jobsListWatch(a.o.Client, ns, selector), &batchv1.Job{},
		cache.SharedIndexInformerOptions{})
	pods := cache.NewSharedIndexInformerWithOptions(podsListWatch(a.o.Client, ns, selector), &corev1.Pod{},
		cache.SharedIndexInformerOptions{Indexers: cache.Indexers{runIndex: byRun}})
	refusals := cache.NewSharedIndexInformerWithOptions(refusalsListWatch(a.o.Client, ns), &corev1.Event{},
		cache.SharedIndexInformerOptions{Indexers: cache.Indexers{jobUIDIndex: byJobUID}})
	tctx, cancel := context.WithCancel(ctx)
	t := &tracker{jobs: jobs.GetIndexer(), pods: pods.GetIndexer(), refusals: refusals.GetIndexer(), cancel: cancel, done: make(chan struct{})}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    a.onObject,
		UpdateFunc: func(_, obj any) { a.onObject(obj) },
		DeleteFunc: a.onObject,
	}
	onRefusal := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.onRefusal(t, obj) },
		UpdateFunc: func(_, obj any) { a.onRefusal(t, obj) },
	}
	var errs []error
	var running sync.WaitGroup
	for _, s := range []struct {
		inf       cache.SharedIndexInformer
		transform cache.TransformFunc
		handler   cache.ResourceEventHandler
	}{{jobs, compact, handler}, {pods, compact, handler}, {refusals, compactRefusal, onRefusal}} {
		errs = append(errs, s.inf.SetTransform(s.transform))
		_, err := s.inf.AddEventHandler(s.handler)
		errs = append(errs, err)
		running.Go(func() { s.inf.Run(tctx.Done()) })
	}
	go func() { running.Wait(); close(t.done) }()
	return t, []cache.InformerSynced{jobs.HasSynced, pods.HasSynced, refusals.HasSynced}, errors.Join(errs...)
}

// waitSynced waits for the informers' caches, at most syncTimeout.
func waitSynced(ctx context.Context, synced []cache.InformerSynced, ns string) error {
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		return fmt.Errorf("watch jobs, pods and events in namespace %s did not sync within %s: check the agent's RBAC (list and watch jobs, pods and events in %s)", ns, syncTimeout, ns)
	}
	return nil
}

// onSynced runs on the loop when a namespace's caches are synced (or
// could not be): the waiting creates start (or fail), and the
// namespace's runs are judged.
func (a *Agent) onSynced(ctx context.Context, s trackerSync) {
	if a.trackers[s.ns] != s.t {
		return // replaced meanwhile (restartTrackers)
	}
	waiting := s.t.waiting
	s.t.waiting = nil
	if s.err != nil {
		a.log.Error("watch jobs and pods", "namespace", s.ns, "err", s.err)
		s.t.stop()
		delete(a.trackers, s.ns)
		for _, w := range waiting {
			if r, ok := a.runs[w.id]; ok {
				r.creating = false
				a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonForbidden, s.err.Error())
			}
		}
		if a.tracks(s.ns) {
			a.tracker(ctx, s.ns) // runs with Jobs there: try again
		}
		return
	}
	s.t.synced = true
	for _, w := range waiting {
		a.create(ctx, w.id, w.job)
	}
	for id, r := range a.runs {
		if r.namespace == s.ns {
			a.dirty.add(id)
		}
	}
}

// tracks reports whether a run with a Job in ns is tracked.
func (a *Agent) tracks(ns string) bool {
	for _, r := range a.runs {
		if r.job != "" && r.namespace == ns {
			return true
		}
	}
	return false
}

// onObject runs in informer goroutines: it only marks the run dirty.
func (a *Agent) onObject(obj any) {
	if id := runOf(obj); id != "" {
		a.dirty.add(id)
	}
}

// runIndex indexes the pod cache by the run label.
const runIndex = "run"

func byRun(obj any) ([]string, error) {
	if id := runOf(obj); id != "" {
		return []string{id}, nil
	}
	return nil, nil
}

// observe gathers what the caches and the run directory say of r.
func (a *Agent) observe(r *run) Observation {
	var o Observation
	t, ok := a.trackers[r.namespace]
	if !ok || !t.synced || r.job == "" {
		return o
	}
	o.Job = t.job(r.namespace, r.job)
	o.Pods = t.podsOf(r.id)
	if o.Job != nil && len(o.Pods) == 0 {
		o.Refusal = t.refusalOf(o.Job.UID)
	}
	o.Result = a.sealedResult(r, o.Job)
	if a.keyReachable && o.Result != nil && o.Result.ExitCode == 0 && !mainEnded(o.Job, o.Pods) {
		o.Result = nil // judged again when the pod's status shows the container's end
	}
	return o
}

// mainEnded reports whether the main container of one of the run's pods
// has terminated (the Job's first container is the runner's).
func mainEnded(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job == nil || len(job.Spec.Template.Spec.Containers) == 0 {
		return false
	}
	main := job.Spec.Template.Spec.Containers[0].Name
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == main && cs.State.Terminated != nil {
				return true
			}
		}
	}
	return false
}

// sealedResult is the run's result.json when its own pod wrote it: sealed
// with its Job's UID, which no other pod knows. Any other is ignored, and
// the run is judged by its Job and pods alone.
func (a *Agent) sealedResult(r *run, job *batchv1.Job) *protocol.Result {
	res := a.readResult(r.id)
	if res == nil {
		return nil
	}
	if job != nil && r.jobUID == "" {
		r.jobUID = job.UID
	}
	if r.jobUID == "" {
		if t, ok := a.trackers[r.namespace]; ok {
			if cached := t.cachedJob(r.namespace, r.job); cached != nil {
				r.jobUID = cached.UID
			}
		}
	}
	if !protocol.ResultSealed(string(r.jobUID), r.id, *res) {
		if !r.unsealedSeen {
			r.unsealedSeen = true
			a.log.Warn("result.json ignored: not sealed by the run's own pod", "run", r.id, "job", r.job)
		}
		return nil
	}
	return res
}
