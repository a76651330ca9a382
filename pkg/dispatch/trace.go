package dispatch

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/share"
	"github.com/magekube/magekube/pkg/telemetry"
)

// traceExportedFile marks a run whose trace was handed to the exporter.
// It is written before the export, so an agent that restarts at any point
// never exports a run's spans twice (at most once, by design).
const traceExportedFile = ".trace-exported"

// exportTimeout bounds one run's export, also on shutdown.
const exportTimeout = 10 * time.Second

// timeline is what only memory knows of a run's progress; after a restart
// the status file's timestamps and the Job stand in for it.
type timeline struct {
	seen, claimed, jobCreated, scheduled time.Time
	dispatchEvents, pendingEvents        []telemetry.TimedEvent
}

// startTrace gives the run its span context: the one its status names
// (a recovered run), else a new one, a child of the request's traceparent
// when it has one.
func (a *Agent) startTrace(r *run) {
	if sc, err := telemetry.ParseTraceParent(r.status.TraceParent); err == nil {
		r.trace = sc
	} else {
		var parent *telemetry.SpanContext
		if r.req != nil {
			if p, err := telemetry.ParseTraceParent(r.req.TraceParent); err == nil {
				parent = &p
			}
		}
		r.trace = a.o.Tracer.NewRun(parent, runName(r))
		r.status.TraceID, r.status.TraceParent = r.trace.TraceID.String(), r.trace.TraceParent()
	}
	if r.req != nil {
		if p, err := telemetry.ParseTraceParent(r.req.TraceParent); err == nil && p.TraceID == r.trace.TraceID {
			r.parentSpan = p.SpanID
		}
	}
}

// runName is the root span's name: "<pipeline>/<block>", or the pipeline.
func runName(r *run) string {
	if r.req == nil {
		return "run " + r.id
	}
	if r.req.BlockUUID != "" {
		return r.req.PipelineUUID + "/" + r.req.BlockUUID
	}
	return r.req.PipelineUUID
}

// maxSpanFiles caps the span files forwarded for one run (the runner
// writes one per attempt), and maxSpanBytes what they may add up to: a
// run's spans are read whole before its trace is exported, and every Job
// pod can write span files.
const (
	maxSpanFiles = 64
	maxSpanBytes = 1 << 20
)

// exportTrace sends a finished run's trace (the agent's spans and the
// runner's span files) from a worker, so the loop never waits on it.
func (a *Agent) exportTrace(ctx context.Context, r *run, res *protocol.Result) {
	if a.o.Tracer == nil || !r.trace.Sampled {
		return
	}
	dir, err := a.vol.runDir(r.id)
	if err != nil {
		return
	}
	defer dir.Close()
	if dir.Create(traceExportedFile, 0o644) != nil {
		return // exported before (or the run dir is unusable)
	}
	data := []telemetry.TracesData{telemetry.RunSpans(a.timelineOf(r, res))}
	data = append(data, a.spanFiles(r, dir)...)
	id := r.id
	a.workers.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exportTimeout)
		defer cancel()
		err := a.o.Tracer.Export(ctx, data...)
		a.o.Metrics.TraceExported(err)
		if err != nil {
			a.log.Warn("export trace", "run", id, "err", err)
		}
	})
}

func (a *Agent) timelineOf(r *run, res *protocol.Result) telemetry.RunTimeline {
	s := r.status
	tl := telemetry.RunTimeline{
		Root: r.trace, Parent: r.parentSpan, Name: runName(r),
		Seen: r.times.seen, Claimed: r.times.claimed, JobCreated: r.times.jobCreated, Scheduled: r.times.scheduled,
		DispatchEvents: r.times.dispatchEvents, PendingEvents: r.times.pendingEvents,
		End: *s.FinishedAt, Done: *s.FinishedAt,
		Failed: s.Phase != protocol.PhaseSucceeded, Reason: s.Reason, Message: s.Message,
	}
	if tl.Seen.IsZero() { // recovered: the status file's clock
		tl.Seen, tl.Claimed = s.CreatedAt, s.CreatedAt
	}
	if t, ok := a.trackers[r.namespace]; ok && r.job != "" && (tl.JobCreated.IsZero() || r.container == "") {
		if job := t.cachedJob(r.namespace, r.job); job != nil { // recovered run
			if tl.JobCreated.IsZero() {
				tl.JobCreated = job.CreationTimestamp.Time
			}
			if r.container == "" && len(job.containers) > 0 {
				r.container = job.containers[0]
			}
		}
	}
	if s.StartedAt != nil {
		tl.Running = *s.StartedAt
	}
	if res != nil && !res.FinishedAt.IsZero() {
		tl.Done = res.FinishedAt
	}
	tl.Attributes = spanAttributes(r)
	return tl
}

// spanAttributes are the run's root span attributes: Kubernetes' names of
// where it ran, its outcome and Mage's names of what it ran.
func spanAttributes(r *run) []telemetry.KeyValue {
	s := r.status
	var attrs []telemetry.KeyValue
	kv := func(k, v string) {
		if v != "" {
			attrs = append(attrs, telemetry.String(k, v))
		}
	}
	kv("k8s.namespace.name", r.namespace)
	kv("k8s.job.name", r.job)
	kv("k8s.pod.name", s.Pod)
	kv("k8s.node.name", s.Node)
	kv("k8s.container.name", r.container)
	kv("magekube.run_id", r.id)
	kv("magekube.phase", string(s.Phase))
	if s.ExitCode != nil {
		attrs = append(attrs, telemetry.Int("process.exit.code", int64(*s.ExitCode)))
	}
	if s.Attempts > 0 {
		attrs = append(attrs, telemetry.Int("magekube.attempts", int64(s.Attempts)))
	}
	if q := r.req; q != nil {
		kv("mage.pipeline_uuid", q.PipelineUUID)
		kv("mage.block_uuid", q.BlockUUID)
		kv("mage.trigger_name", q.TriggerName)
		if q.BlockRunID != 0 {
			kv("mage.block_run_id", strconv.FormatInt(q.BlockRunID, 10))
		}
		if q.PipelineRunID != 0 {
			kv("mage.pipeline_run_id", strconv.FormatInt(q.PipelineRunID, 10))
		}
		kv("mage.kind", string(q.Kind))
	}
	return attrs
}

// noteProgress records, for the trace, when the pod was first bound to a
// node and each reason a pending run waited for.
func (a *Agent) noteProgress(r *run, v Verdict) {
	now := time.Now()
	if v.Node != "" && r.times.scheduled.IsZero() {
		r.times.scheduled = now
	}
	if v.Reason != "" && v.Reason != r.status.Reason && !v.Phase.Terminal() {
		r.times.pendingEvents = append(r.times.pendingEvents, telemetry.TimedEvent{Time: now, Name: v.Reason, Message: v.Message})
		if protocol.IsProblem(v.Reason) {
			a.event(r, true, v.Reason, v.Message)
		}
	}
}

// inTrace reports whether every span of td is in the trace: a span file
// in a run's directory may add spans to that run's trace only.
func inTrace(td telemetry.TracesData, traceID string) bool {
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				if s.TraceID != traceID {
					return false
				}
			}
		}
	}
	return true
}

// spanFiles reads the run's span files that belong to its trace, within
// maxSpanFiles and maxSpanBytes in all; the rest is skipped with a warning.
func (a *Agent) spanFiles(r *run, dir *share.Dir) []telemetry.TracesData {
	spans, err := dir.Dir(protocol.SpansDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("span files not forwarded", "run", r.id, "err", err)
		}
		return nil
	}
	defer spans.Close()
	names, _ := spans.Entries()
	slices.Sort(names)
	var out []telemetry.TracesData
	left, files := int64(maxSpanBytes), 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		if files++; files > maxSpanFiles || left <= 0 {
			a.log.Warn("span files over the limit not forwarded", "run", r.id, "files", len(names), "limit_files", maxSpanFiles, "limit_bytes", maxSpanBytes)
			break
		}
		raw, _, err := spans.ReadFile(name, left)
		if err == nil {
			left -= int64(len(raw))
		}
		var td telemetry.TracesData
		if err == nil {
			td, err = telemetry.DecodeSpanFile(raw)
		}
		if err == nil && !inTrace(td, r.trace.TraceID.String()) {
			err = errors.New("its spans belong to another trace than the run's")
		}
		if err != nil {
			a.log.Warn("span file not forwarded", "run", r.id, "file", name, "err", err)
			continue
		}
		out = append(out, td)
	}
	return out
}
