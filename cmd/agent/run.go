package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/policy"
	"github.com/magekube/magekube/pkg/server"
)

type runOptions struct {
	maxInflight    int
	maxQueued      int
	maxQueuedBytes int64
	rescan         time.Duration
	retention      time.Duration
	startWait      time.Duration
	listen         string
	profiling      bool
	logFormat      string
	logLevel       string
	policy         policy.Policy
}

func runCommand(g *globalOptions) *cli.Command {
	o := &runOptions{}
	return &cli.Command{
		Name:  "run",
		Usage: "run the sidecar: take requests in, create Jobs, write every outcome back",
		Description: `Watches <dir>/requests/ (fsnotify, plus a rescan every --rescan as a
safety net for writes inotify cannot see), claims each request by moving it
to <dir>/runs/<id>/, builds its Job (see 'agent render'), creates it and
tracks it with label-selected informers, rewriting runs/<id>/status.json on
every transition. A file runs/<id>/cancel deletes the run's Job.

At start the agent reads its own pod (KUBE_POD_NAME, KUBE_NAMESPACE) and
checks its permissions; a missing one stops it with the exact verb,
resource and namespace. On SIGTERM it stops taking requests and leaves the
Jobs running; the next agent adopts them and every unfinished run.

HTTP on --listen: /healthz (fails when the agent's loop has not run for
30 s), /readyz (runs recovered, informers synced; for monitoring, not a
probe: the sidecar must never take Mage out of its Service), /metrics
(Prometheus), and with --profiling Go's /debug/pprof/. The loop also
rewrites <dir>/agent/heartbeat every 10 s for the Mage trigger.

A run still waiting to start after --start-timeout fails as StartTimeout;
finished runs older than --retention are removed.`,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "max-inflight", Value: 100, EnvVars: env("MAGEKUBE_MAX_INFLIGHT"), Destination: &o.maxInflight,
				Usage: "runs with a live Job at once; more wait as Queued"},
			&cli.IntFlag{Name: "max-queued", Value: dispatch.DefaultMaxQueued, EnvVars: env("MAGEKUBE_MAX_QUEUED"), Destination: &o.maxQueued,
				Usage: "runs that may wait as Queued; a run past it fails QueueFull"},
			&cli.Int64Flag{Name: "max-queued-bytes", Value: dispatch.DefaultMaxQueuedBytes, EnvVars: env("MAGEKUBE_MAX_QUEUED_BYTES"), Destination: &o.maxQueuedBytes,
				Usage: "bytes of request files the Queued runs may add up to; a run past it fails QueueFull (bounds the agent's memory whatever the requests hold)"},
			&cli.DurationFlag{Name: "rescan", Value: 30 * time.Second, EnvVars: env("MAGEKUBE_RESCAN"), Destination: &o.rescan,
				Usage: "safety-net rescan of the request and run directories"},
			&cli.DurationFlag{Name: "start-timeout", Value: dispatch.DefaultStartTimeout, EnvVars: env("MAGEKUBE_START_TIMEOUT"), Destination: &o.startWait,
				Usage: "a run still waiting to start (unschedulable, pulling) this long after its Job was created fails as StartTimeout and its Job is deleted; job.start_timeout_seconds overrides it per run (0: wait forever)"},
			&cli.DurationFlag{Name: "retention", Value: dispatch.DefaultRetention, EnvVars: env("MAGEKUBE_RETENTION"), Destination: &o.retention,
				Usage: "finished run directories and rejected requests older than this are removed (0: kept forever)"},
			&cli.StringFlag{Name: "listen", Value: ":8080", EnvVars: env("MAGEKUBE_LISTEN"), Destination: &o.listen,
				Usage: "address for /healthz, /readyz and /metrics"},
			&cli.BoolFlag{Name: "profiling", EnvVars: env("MAGEKUBE_PROFILING"), Destination: &o.profiling,
				Usage: "serve Go's CPU and heap profiles at /debug/pprof/ on --listen"},
			&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: env("MAGEKUBE_LOG_FORMAT"), Destination: &o.logFormat,
				Usage: "json, text, or auto (text on a terminal, else JSON)"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: env("MAGEKUBE_LOG_LEVEL"), Destination: &o.logLevel,
				Usage: "debug, info, warn or error; client-go's own messages go to the same log"},
		}, append(policyFlags(&o.policy), commandFlags(g)...)...),
		Action: func(c *cli.Context) error {
			log, err := logger(o.logFormat, o.logLevel)
			if err != nil {
				return err
			}
			return server.Run(c.Context, server.Config{
				Dir: g.dir, Kube: g.kube, PodName: g.podName, PodNamespace: g.podNamespace,
				Builder: jobspec.Builder{Settings: g.jobSettings(), Configs: execconfig.NewCache()}, Policy: o.policy,
				MaxInflight: o.maxInflight, MaxQueued: o.maxQueued, MaxQueuedBytes: o.maxQueuedBytes, Rescan: o.rescan, Retention: o.retention, StartTimeout: o.startWait, Listen: o.listen, Profiling: o.profiling, Log: log,
			})
		},
	}
}

// logger is the agent's structured log; client-go's own messages (klog)
// go to it too, so one log holds everything, at one level.
func logger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "text"
		}
	}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want json, text or auto", format)
	}
	log := slog.New(h)
	klog.SetSlogLogger(log.With("source", "client-go"))
	return log, nil
}
