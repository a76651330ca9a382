// Package metrics is the agent's Prometheus registry: runs, latencies,
// load, trace exports and the Kubernetes client's requests.
package metrics

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// Metrics are the agent's Prometheus metrics, in one explicit registry.
// Every method is safe on a nil *Metrics (metrics off).
type Metrics struct {
	Registry *prometheus.Registry

	runs       *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	dispatch   prometheus.Histogram
	notice     prometheus.Histogram
	queue      prometheus.Gauge
	inflight   prometheus.Gauge
	pending    *prometheus.GaugeVec
	apiLatency *prometheus.HistogramVec
	apiResults *prometheus.CounterVec
	exports    *prometheus.CounterVec
}

// latencyBuckets span 1 ms to about 16 s: dispatch and notice latencies
// are milliseconds when all is well and seconds when the API server is
// slow or a poll is involved.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// NewMetrics registers magekube's metrics, the Go and process collectors
// and magekube_build_info{version}.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magekube_runs_total", Help: "Runs that ended, by phase (Succeeded, Failed, Cancelled) and reason.",
		}, []string{"phase", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "magekube_run_duration_seconds", Help: "Time from request seen to terminal status, by phase.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 16),
		}, []string{"phase"}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "magekube_dispatch_latency_seconds", Help: "Time from request seen to Job created (queue wait included).",
			Buckets: latencyBuckets,
		}),
		notice: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "magekube_completion_notice_latency_seconds", Help: "Time from the runner's result (command ended) to the terminal status.json.",
			Buckets: latencyBuckets,
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "magekube_queue_depth", Help: "Runs waiting for an in-flight slot (--max-inflight).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "magekube_inflight_runs", Help: "Runs with a live Job.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "magekube_runs_pending", Help: "Runs waiting to start, by the reason they wait (Unschedulable, ImagePullBackOff, ContainerCreating, …).",
		}, []string{"reason"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "magekube_kube_api_request_duration_seconds", Help: "Kubernetes API request latency, by verb.",
			Buckets: latencyBuckets,
		}, []string{"verb"}),
		apiResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magekube_kube_api_requests_total", Help: "Kubernetes API requests by HTTP code (\"<error>\": no answer) and method.",
		}, []string{"code", "method"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "magekube_trace_exports_total", Help: "Run traces handed to the OTLP exporter, by result (ok, error).",
		}, []string{"result"}),
	}
	m.Registry.MustRegister(m.runs, m.duration, m.dispatch, m.notice, m.queue, m.inflight, m.pending, m.apiLatency, m.apiResults, m.exports,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "magekube_build_info", Help: "Always 1; the version is a label.", ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }))
	return m
}

// RunFinished counts an ended run.
func (m *Metrics) RunFinished(phase, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(phase, reason).Inc()
	if d > 0 {
		m.duration.WithLabelValues(phase).Observe(d.Seconds())
	}
}

// Dispatched observes request seen → Job created.
func (m *Metrics) Dispatched(d time.Duration) {
	if m != nil && d >= 0 {
		m.dispatch.Observe(d.Seconds())
	}
}

// Noticed observes runner result → terminal status.
func (m *Metrics) Noticed(d time.Duration) {
	if m != nil && d >= 0 {
		m.notice.Observe(d.Seconds())
	}
}

// SetLoad sets the queue depth and in-flight gauges.
func (m *Metrics) SetLoad(queued, inflight int) {
	if m != nil {
		m.queue.Set(float64(queued))
		m.inflight.Set(float64(inflight))
	}
}

// Pending moves one run into (delta 1) or out of (-1) the runs waiting
// to start for reason.
func (m *Metrics) Pending(reason string, delta float64) {
	if m != nil {
		m.pending.WithLabelValues(reason).Add(delta)
	}
}

// TraceExported counts one export.
func (m *Metrics) TraceExported(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.exports.WithLabelValues("error").Inc()
		return
	}
	m.exports.WithLabelValues("ok").Inc()
}

// client-go reports every request to process-wide hooks that can be set
// once; they feed whichever Metrics called ObserveKubernetesAPI last.
var (
	hooksOnce sync.Once
	hooked    atomic.Pointer[Metrics]
)

// ObserveKubernetesAPI routes client-go's request latency and result
// hooks into m.
func (m *Metrics) ObserveKubernetesAPI() {
	if m == nil {
		return
	}
	hooked.Store(m)
	hooksOnce.Do(func() {
		clientmetrics.Register(clientmetrics.RegisterOpts{RequestLatency: latencyHook{}, RequestResult: resultHook{}})
	})
}

type latencyHook struct{}

func (latencyHook) Observe(_ context.Context, verb string, _ url.URL, d time.Duration) {
	if m := hooked.Load(); m != nil {
		m.apiLatency.WithLabelValues(verb).Observe(d.Seconds())
	}
}

type resultHook struct{}

func (resultHook) Increment(_ context.Context, code, method, _ string) {
	if m := hooked.Load(); m != nil {
		m.apiResults.WithLabelValues(code, method).Inc()
	}
}
