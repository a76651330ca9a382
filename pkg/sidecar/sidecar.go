// Package sidecar is `agent run`: it connects to the API server, reads the
// server pod, checks the agent's permissions, serves /healthz, /readyz and
// /metrics, and runs the dispatch engine until it is told to stop.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/magekube/magekube/pkg/buildinfo"
	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
)

// Config is everything `agent run` needs.
type Config struct {
	Dir          string
	Kube         kube.Options
	PodName      string
	PodNamespace string
	Builder      dispatch.Builder
	Policy       dispatch.Policy
	MaxInflight  int
	Rescan       time.Duration
	Listen       string
	Log          *slog.Logger
}

// Run serves until ctx ends.
func Run(ctx context.Context, c Config) error {
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
	if err := dispatch.Preflight(ctx, client, pod.Namespace); err != nil {
		return fmt.Errorf("preflight:\n%w", err)
	}
	agent, err := dispatch.New(dispatch.Options{
		Layout: protocol.Layout{Root: c.Dir}, Builder: c.Builder, Policy: c.Policy, Client: client, Pod: pod,
		MaxInflight: c.MaxInflight, Rescan: c.Rescan, Log: c.Log, APIErrors: outages.Errors(),
	})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "magekube_build_info", Help: "Always 1; the version is a label.", ConstLabels: prometheus.Labels{"version": buildinfo.Version},
	}, func() float64 { return 1 }))

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !agent.Ready() {
			http.Error(w, "recovering runs and syncing informers", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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
