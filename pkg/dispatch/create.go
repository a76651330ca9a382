package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry"
)

// createResult is a create worker's report to the loop.
type createResult struct {
	id      string
	job     *batchv1.Job
	adopted bool
	reason  string // set on failure
	err     error
	at      time.Time              // when the Job was created
	retries []telemetry.TimedEvent // failed attempts, for the dispatch span
}

// enqueue resolves and checks the run's config at once, whatever the
// queue (a bad config fails now, not when a slot frees), then dispatches
// the run or queues it behind --max-inflight.
func (a *Agent) enqueue(ctx context.Context, r *run) {
	p := a.prepare(r)
	if p.reason != "" {
		a.finish(ctx, r, protocol.PhaseFailed, p.reason, p.message)
		return
	}
	a.enqueuePrepared(ctx, r, p.job)
}

// Defaults of the queue's caps: a backfill's worth of runs (a Mage
// request file is 1-2 KB), and request files whose parsed form (up to ten
// times a file's size for a hostile one) stays well under the sidecar's
// 256 MiB.
const (
	DefaultMaxQueued            = 10000
	DefaultMaxQueuedBytes int64 = 16 << 20
)

// enqueuePrepared dispatches a prepared run, or queues it behind
// --max-inflight; past the queue's caps it fails QueueFull.
func (a *Agent) enqueuePrepared(ctx context.Context, r *run, job *batchv1.Job) {
	if a.inflight < a.o.MaxInflight {
		a.dispatch(ctx, r, job)
		return
	}
	switch {
	case len(a.queue) >= a.o.MaxQueued:
		a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonQueueFull, fmt.Sprintf(
			"%d runs wait for one of the %d in-flight slots already (--max-queued %d); request it again later, or raise --max-queued or --max-inflight", len(a.queue), a.o.MaxInflight, a.o.MaxQueued))
		return
	case a.queued+r.reqBytes > a.o.MaxQueuedBytes:
		a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonQueueFull, fmt.Sprintf(
			"the waiting runs' requests take %d bytes, and this one %d more (--max-queued-bytes %d); request it again later, or raise --max-queued-bytes", a.queued, r.reqBytes, a.o.MaxQueuedBytes))
		return
	}
	r.dropBuildInputs()
	a.queue = append(a.queue, r.id)
	a.queued += r.reqBytes
	r.queued = true
}

// dequeued takes r's bytes off the queue's count.
func (a *Agent) dequeued(r *run) {
	r.queued = false
	a.queued -= r.reqBytes
}

// prepared is a run's Job, built and checked, or why it cannot run.
type prepared struct {
	job             *batchv1.Job
	reason, message string // set when the run fails
}

// prepare resolves the run's executor config, builds its Job, checks it
// against the policy and shares the run directory with the Job's user.
// The run keeps only its resolved config: a queued run is rebuilt from
// it. It touches nothing but r, so intake workers prepare runs in
// parallel.
func (a *Agent) prepare(r *run) prepared {
	b := a.builder(r)
	cfg, err := b.Resolve(a.o.Pod, r.req)
	var job *batchv1.Job
	if err == nil {
		job, err = b.FromConfig(a.o.Pod, cfg, r.req)
	}
	if err != nil {
		reason := protocol.ReasonError
		var cfgErr *jobspec.ConfigError
		if errors.As(err, &cfgErr) {
			reason = protocol.ReasonInvalidConfig
		}
		return prepared{reason: reason, message: strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	if v := a.o.Policy.Violations(a.o.Pod, b.Settings, job); len(v) > 0 {
		return prepared{reason: protocol.ReasonPolicyDenied, message: "the run's config asks for more than the Mage container has: " + strings.Join(v, "; ")}
	}
	r.config = cfg
	var fsGroup *int64
	if sc := job.Spec.Template.Spec.SecurityContext; sc != nil {
		fsGroup = sc.FSGroup
	}
	if err := a.vol.shareRunDir(r.id, fsGroup); err != nil {
		a.log.Warn("run directory not shared with the Job's user; its log and result may not be written", "run", r.id, "err", err)
	}
	return prepared{job: job}
}

// dropBuildInputs drops what the run's resolved config replaced: the
// request's executor config, variables and env values, which only
// resolving the config reads (a queued run's Job is built from the
// config, the command and the ids).
func (r *run) dropBuildInputs() {
	if r.req != nil {
		req := *r.req
		req.ExecutorConfig, req.Variables, req.Env = nil, nil, nil
		r.req = &req
	}
}

// keepIdentity drops what only building the run's Job needed, once it
// has one.
func (r *run) keepIdentity() {
	if r.req != nil {
		r.req = r.req.Identity()
	}
	r.config = nil
}

// builder is the agent's Job builder with the run's trace parent.
func (a *Agent) builder(r *run) jobspec.Builder {
	b := a.o.Builder
	b.Settings.TraceParent = r.status.TraceParent
	return b
}

// dispatch takes an in-flight slot for the run and creates its Job (job,
// or rebuilt from the resolved config) once the namespace's caches are
// synced; the loop never waits for that sync.
func (a *Agent) dispatch(ctx context.Context, r *run, job *batchv1.Job) {
	if job == nil {
		var err error
		if job, err = a.builder(r).FromConfig(a.o.Pod, r.config, r.req); err != nil {
			a.finish(ctx, r, protocol.PhaseFailed, protocol.ReasonError, strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
	}
	if v, err := strconv.ParseInt(job.Annotations[jobspec.AnnotationStartTimeout], 10, 64); err == nil {
		r.startTimeout = time.Duration(v) * time.Second
	}
	r.creating, r.inflight = true, true
	a.inflight++
	t := a.tracker(ctx, job.Namespace)
	if !t.synced {
		t.waiting = append(t.waiting, waitingCreate{id: r.id, job: job})
		return
	}
	a.create(ctx, r.id, job)
}

// create hands the Job's create to a worker goroutine, which reports to
// the loop (onCreated).
func (a *Agent) create(ctx context.Context, id string, job *batchv1.Job) {
	adoptOnly := false
	if r, ok := a.runs[id]; ok {
		adoptOnly = r.adoptOnly
	}
	a.workers.Go(func() {
		var res createResult
		if adoptOnly {
			res = adoptJob(ctx, a.o, id, job)
		} else {
			res = createJob(ctx, a.o, id, job)
		}
		select {
		case a.created <- res:
		case <-ctx.Done():
		}
	})
}

// maxCreateDelay caps the create backoff: after an API server outage a
// run waits at most this long past the recovery.
const maxCreateDelay = 5 * time.Second

// createJob creates the Job, retrying transient errors with exponential
// backoff and jitter (honouring Retry-After). AlreadyExists adopts a Job
// made for this run (an earlier life of the agent) and refuses any other.
func createJob(ctx context.Context, o Options, id string, job *batchv1.Job) createResult {
	jobs := o.Client.BatchV1().Jobs(job.Namespace)
	start := time.Now()
	delay := 200 * time.Millisecond
	var retries []telemetry.TimedEvent
	for attempt := 1; ; attempt++ {
		created, err := jobs.Create(ctx, job, metav1.CreateOptions{FieldManager: "magekube"})
		switch {
		case err == nil:
			return createResult{id: id, job: created, at: time.Now(), retries: retries}
		case apierrors.IsAlreadyExists(err):
			existing, gerr := jobs.Get(ctx, job.Name, metav1.GetOptions{})
			if gerr != nil {
				err = gerr
				break
			}
			if ownJob(existing, job, id) {
				return createResult{id: id, job: existing, adopted: true, at: existing.CreationTimestamp.Time, retries: retries}
			}
			return createResult{id: id, reason: protocol.ReasonNameCollision, err: fmt.Errorf(
				"job %s/%s already exists for run %q (Mage's name depends only on the cluster uuid, prefix and run id); delete it or change job_name_prefix",
				job.Namespace, job.Name, existing.Annotations[jobspec.AnnotationRunID])}
		case apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			if res, retry := refusedCreate(id, job, err, time.Since(start)); !retry {
				return res
			}
		case ctx.Err() != nil:
			return createResult{id: id, reason: protocol.ReasonError, err: ctx.Err()}
		}
		wait := delay + rand.N(delay/2+1)
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			wait = time.Duration(s) * time.Second
		}
		o.Log.Warn("create job failed; retrying", "run", id, "attempt", attempt, "in", wait, "err", err)
		retries = append(retries, telemetry.TimedEvent{Time: time.Now(), Name: "create failed; retrying", Message: err.Error()})
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return createResult{id: id, reason: protocol.ReasonError, err: ctx.Err()}
		}
		delay = min(delay*2, maxCreateDelay)
	}
}

// ownJob reports whether existing, found under the name of want, is the
// Job this agent's instance made for run id: the labels the agent sets
// itself (managed-by, instance, run), as its informers select them.
func ownJob(existing, want *batchv1.Job, id string) bool {
	l := existing.Labels
	return l[jobspec.LabelManagedBy] == jobspec.ManagedByValue && l[jobspec.LabelInstance] == want.Labels[jobspec.LabelInstance] &&
		l[jobspec.LabelRun] == id && existing.Annotations[jobspec.AnnotationRunID] == id
}

// adoptJob finds the Job of a run that had started before this agent did
// (adoptOnly): by its name, which the request and config give, and the
// labels the agent sets. Gone, it is not created again: the block may have
// run to its end while no agent watched, and its Job's TTL removed it.
func adoptJob(ctx context.Context, o Options, id string, job *batchv1.Job) createResult {
	existing, err := o.Client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	switch {
	case err == nil && ownJob(existing, job, id):
		return createResult{id: id, job: existing, adopted: true, at: existing.CreationTimestamp.Time}
	case err == nil:
		return createResult{id: id, reason: protocol.ReasonNameCollision, err: fmt.Errorf("job %s/%s belongs to another run, not %s", job.Namespace, job.Name, id)}
	case apierrors.IsNotFound(err):
		return createResult{id: id, reason: protocol.ReasonJobDeleted, err: fmt.Errorf(
			"job %s/%s of this run is gone (deleted, or removed by its TTL while no agent ran); the run had started, so it is not created again", job.Namespace, job.Name)}
	}
	return createResult{id: id, reason: protocol.ReasonError, err: fmt.Errorf("find job %s/%s: %w", job.Namespace, job.Name, err)}
}

// refusedCreate sorts the API server's refusal of a Job create: a quota
// that may free up is retried (retry) for up to quotaWait; a quota of
// zero, a webhook or a policy fails the run with the API's message;
// any other 403 is the agent's RBAC, any other 400/422 the config's.
func refusedCreate(id string, job *batchv1.Job, err error, waited time.Duration) (res createResult, retry bool) {
	reason, canPass := classify(err.Error())
	switch {
	case reason == protocol.ReasonQuotaExceeded && canPass && waited < quotaWait:
		return createResult{}, true
	case reason != protocol.ReasonFailedCreate:
		return createResult{id: id, reason: reason, err: fmt.Errorf("the API server refused job %s/%s: %v", job.Namespace, job.Name, err)}, false
	case apierrors.IsForbidden(err):
		return createResult{id: id, reason: protocol.ReasonForbidden, err: fmt.Errorf(
			"create jobs in namespace %s is forbidden for the agent's service account: %v (grant it with deploy/manifests RBAC: jobs create/get/list/watch/delete)", job.Namespace, err)}, false
	}
	return createResult{id: id, reason: protocol.ReasonInvalidConfig, err: fmt.Errorf("the API server rejected job %s/%s: %v", job.Namespace, job.Name, err)}, false
}

// onCreated records a worker's result: the run is Dispatched, or failed.
func (a *Agent) onCreated(ctx context.Context, res createResult) {
	r, ok := a.runs[res.id]
	if !ok {
		return
	}
	r.creating = false
	if res.err != nil {
		if ctx.Err() != nil {
			return // shutting down: the next agent dispatches it again
		}
		a.finish(ctx, r, protocol.PhaseFailed, res.reason, res.err.Error())
		return
	}
	verb := "created"
	if res.adopted {
		verb = "adopted"
	}
	r.namespace, r.job = res.job.Namespace, res.job.Name
	a.log.Info("job "+verb, "run", r.id, "job", res.job.Name, "namespace", res.job.Namespace)
	if r.stop != nil {
		a.stop(ctx, r, *r.stop)
		return
	}
	r.times.jobCreated, r.times.dispatchEvents = res.at, res.retries
	r.keepIdentity()
	r.pendingSince = res.at
	r.jobUID = res.job.UID
	if !res.adopted && !r.times.seen.IsZero() {
		a.o.Metrics.Dispatched(res.at.Sub(r.times.seen))
	}
	if cs := res.job.Spec.Template.Spec.Containers; len(cs) > 0 {
		r.container = cs[0].Name
	}
	r.status.Phase, r.status.Namespace, r.status.Job = protocol.PhaseDispatched, res.job.Namespace, res.job.Name
	r.status.Reason, r.status.Message = "", ""
	a.writeStatus(r)
	a.watchRun(r)
	a.dirty.add(r.id)
}
