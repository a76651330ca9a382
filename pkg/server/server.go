package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/magekube/magekube/pkg/buildinfo"
	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/policy"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry/metrics"
	"github.com/magekube/magekube/pkg/telemetry/otlp"
)

// Config is everything `agent run` needs.
type Config struct {
	Dir          string
	Kube         kube.Options
	PodName      string
	PodNamespace string
	Builder      jobspec.Builder
	Policy       policy.Policy
	MaxInflight  int
	// MaxQueued and MaxQueuedBytes cap the runs waiting for a slot.
	MaxQueued      int
	MaxQueuedBytes int64
	Rescan         time.Duration
	Retention      time.Duration
	StartTimeout   time.Duration
	Listen         string
	// Profiling serves net/http/pprof at /debug/pprof/ on Listen.
	Profiling bool
	Log       *slog.Logger
}

// Run serves until ctx ends.
func Run(ctx context.Context, c Config) error {
	if soft := SetMemoryLimit(); soft > 0 {
		c.Log.Info("garbage collector soft memory limit: 90% of the container's", "bytes", soft)
	}
	if SetGCPercent() {
		c.Log.Debug("garbage collector percent (GOGC unset)", "gogc", DefaultGCPercent)
	}
	metrics := metrics.NewMetrics(buildinfo.Version)
	metrics.ObserveKubernetesAPI()
	tracer, err := otlp.NewTracer(ctx, "magekube-agent", nil)
	if err != nil {
		return fmt.Errorf("tracing (OTEL_* environment): %w", err)
	}
	defer flushTraces(ctx, tracer, c.Log)
	if tracer != nil {
		c.Log.Info("tracing on: each run is exported as one trace over OTLP")
	}
	outages := kube.NewOutages()
	c.Kube.Outages = outages
	client, err := kube.Client(c.Kube)
	if err != nil {
		return err
	}
	pod, err := kube.OwnPod(ctx, client, c.PodNamespace, c.PodName)
	if err != nil {
		return err
	}
	// Every namespace a run may use is checked now, not at its first run:
	// the agent's own and each one --allow-namespace names ("*" cannot be
	// checked ahead).
	namespaces := []string{pod.Namespace}
	for _, ns := range c.Policy.Namespaces {
		if ns != "*" && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	for _, ns := range namespaces {
		if err := kube.Preflight(ctx, client, ns); err != nil {
			return fmt.Errorf("preflight:\n%w", err)
		}
	}
	events, stopEvents := eventRecorder(ctx, client)
	defer stopEvents()
	agent, err := dispatch.New(dispatch.Options{
		Layout: protocol.Layout{Root: c.Dir}, Builder: c.Builder, Policy: c.Policy, Client: client, Pod: pod,
		MaxInflight: c.MaxInflight, MaxQueued: c.MaxQueued, MaxQueuedBytes: c.MaxQueuedBytes, Rescan: c.Rescan, Retention: c.Retention, StartTimeout: c.StartTimeout, Log: c.Log, APIErrors: outages.Errors(),
		Tracer: tracer, Metrics: metrics, Events: events,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: handler(agent, metrics, c.Profiling), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c.Log.Info("serving", "addr", ln.Addr().String(), "pod", pod.Namespace+"/"+pod.Name)

	runErr := agent.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	return runErr
}

// flushTraces sends what the tracer holds, within 10 s, also on shutdown.
func flushTraces(ctx context.Context, tracer *otlp.Tracer, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := tracer.Shutdown(sctx); err != nil {
		log.Warn("flush traces", "err", err)
	}
}

// eventRecorder records Kubernetes Events through client until stop.
func eventRecorder(ctx context.Context, client kubernetes.Interface) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "magekube-agent"}), broadcaster.Shutdown
}

// handler serves /healthz (the loop beats), /readyz (runs recovered,
// caches synced), /metrics and, when asked, /debug/pprof/.
func handler(agent *dispatch.Agent, metrics *metrics.Metrics, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := agent.Alive(time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !agent.Ready() {
			http.Error(w, "recovering runs and syncing informers", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
