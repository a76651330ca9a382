package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry"
)

// attemptsDir holds one empty directory per attempt; mkdir is the atomic
// counter, so two pods of one Job never share an attempt number.
const attemptsDir = "attempts"

// recorder writes what a run leaves behind in its directory: the log, the
// result and the runner.exec span. When the directory is unusable it
// warns once and records nothing, and the command still runs.
type recorder struct {
	dir     string
	warn    io.Writer
	log     *sharedLog
	attempt int
	pod     string
	start   time.Time
	pid     int
	span    telemetry.SpanContext
	parent  telemetry.SpanID
	command []string
	// key and runID seal result.json (inherit's MAGEKUBE_RUN_KEY and
	// MAGEKUBE_RUN_ID; unset outside a Job).
	key, runID string
}

// Environment the Job's container gives the runner (inherit sets it).
const (
	envRunKey = "MAGEKUBE_RUN_KEY"
	envRunID  = "MAGEKUBE_RUN_ID"
)

func newRecorder(o Options, start time.Time) *recorder {
	r := &recorder{dir: o.RunDir, warn: o.Stderr, pod: o.Pod, start: start, command: o.Command,
		key: lookup(o.Env, envRunKey), runID: lookup(o.Env, envRunID)}
	r.log = &sharedLog{warn: o.Stderr, limit: o.LogLimit}
	r.traceContext(o.Env)
	if r.dir == "" {
		return r
	}
	if err := r.open(); err != nil {
		fmt.Fprintf(o.Stderr, "runner: warning: run directory %s is not writable (%v): the command runs, but no log, result or span is recorded\n", r.dir, err)
		r.dir = ""
		return r
	}
	if err := r.openLog(); err != nil {
		fmt.Fprintf(o.Stderr, "runner: warning: %v: the command runs, its output is not copied to the run's log\n", err)
	}
	return r
}

func (r *recorder) open() error {
	if err := os.MkdirAll(filepath.Join(r.dir, attemptsDir), 0o755); err != nil {
		return err
	}
	for n := 1; ; n++ {
		err := os.Mkdir(filepath.Join(r.dir, attemptsDir, strconv.Itoa(n)), 0o755)
		if err == nil {
			r.attempt = n
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if n == 1 { // a retry: start after the highest attempt, not at 2
			n = max(n, lastAttempt(filepath.Join(r.dir, attemptsDir)))
		}
	}
}

// lastAttempt is the highest attempt number in dir (0 for none): a later
// attempt's number is found with one directory read, not a mkdir per
// attempt before it.
func lastAttempt(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	last := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			last = max(last, n)
		}
	}
	return last
}

// openLog opens the run's log for appending.
func (r *recorder) openLog() error {
	// Another pod may have planted a FIFO or a link at the log's name:
	// neither blocks the command nor sends its output elsewhere.
	path := filepath.Join(r.dir, protocol.LogFile)
	f, _, err := protocol.OpenRegular(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the run's log: %w", err)
	}
	r.log.f = f
	if r.attempt > 1 {
		fmt.Fprintf(f, "--- magekube: attempt %d on pod %s ---\n", r.attempt, r.pod)
	}
	return nil
}

// traceContext makes the runner.exec span a child of TRACEPARENT when it
// is set and valid, else the root of a new trace.
func (r *recorder) traceContext(env []string) {
	r.span = telemetry.SpanContext{TraceID: telemetry.NewTraceID(), SpanID: telemetry.NewSpanID(), Sampled: true}
	if sc, err := telemetry.ParseTraceParent(lookup(env, "TRACEPARENT")); err == nil {
		r.span.TraceID, r.span.Sampled, r.parent = sc.TraceID, sc.Sampled, sc.SpanID
	}
}

// childEnv is a copy of env whose TRACEPARENT names the runner.exec span.
func (r *recorder) childEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TRACEPARENT=") && !strings.HasPrefix(kv, envRunKey+"=") {
			out = append(out, kv)
		}
	}
	return append(out, "TRACEPARENT="+r.span.TraceParent())
}

func (r *recorder) started(pid int) { r.pid = pid }

func (r *recorder) finish(code int, sig syscall.Signal, reason, msg string, end time.Time) {
	if r.dir == "" {
		return
	}
	res := protocol.Result{
		ExitCode: code, Reason: reason, Message: msg,
		StartedAt: r.start.UTC(), FinishedAt: end.UTC(), DurationSeconds: end.Sub(r.start).Seconds(),
		Pod: r.pod, Attempt: r.attempt, TraceID: r.span.TraceID.String(),
	}
	if sig != 0 {
		name := signalName(sig)
		res.Signal = &name
	}
	if r.key != "" && r.runID != "" {
		res.Seal = protocol.SealResult(r.key, r.runID, res)
	}
	if err := r.writeSpan(res); err != nil {
		fmt.Fprintf(r.warn, "runner: warning: %v\n", err)
	}
	if err := protocol.WriteJSONAtomic(filepath.Join(r.dir, protocol.ResultFile), res); err != nil {
		fmt.Fprintf(r.warn, "runner: warning: %v\n", err)
	}
}

func (r *recorder) writeSpan(res protocol.Result) error {
	if !r.span.Sampled {
		return nil
	}
	span := telemetry.Span{
		TraceID: r.span.TraceID.String(), SpanID: r.span.SpanID.String(),
		Name: "runner.exec", Kind: telemetry.KindInternal,
		StartTimeUnixNano: telemetry.UnixNano(res.StartedAt), EndTimeUnixNano: telemetry.UnixNano(res.FinishedAt),
		Attributes: []telemetry.KeyValue{
			telemetry.String("process.executable.name", filepath.Base(r.command[0])),
			telemetry.Int("process.exit.code", int64(res.ExitCode)),
			telemetry.Int("magekube.attempt", int64(res.Attempt)),
			telemetry.String("magekube.reason", res.Reason),
		},
	}
	if r.parent.IsValid() {
		span.ParentSpanID = r.parent.String()
	}
	if r.pid != 0 {
		span.Attributes = append(span.Attributes, telemetry.Int("process.pid", int64(r.pid)))
	}
	if res.Signal != nil {
		span.Attributes = append(span.Attributes, telemetry.String("process.exit.signal", *res.Signal))
	}
	if res.ExitCode != 0 {
		span.Status = telemetry.Status{Code: telemetry.StatusError, Message: res.Message}
	}
	var resource []telemetry.KeyValue
	if r.pod != "" {
		resource = append(resource, telemetry.String("k8s.pod.name", r.pod))
	}
	dir := filepath.Join(r.dir, protocol.SpansDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write span: %w", err)
	}
	data, err := json.Marshal(telemetry.SpanFile("magekube-runner", resource, span))
	if err != nil {
		return fmt.Errorf("write span: %w", err)
	}
	return protocol.ReplaceFile(filepath.Join(dir, fmt.Sprintf("runner-exec-%d.json", r.attempt)), data, 0o644)
}

func (r *recorder) close() { _ = r.log.Close() }

func lookup(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
