// Command agent is the magekube sidecar: it turns Mage run requests into
// Kubernetes Jobs and writes their outcomes back as files.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/buildinfo"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdout, os.Stderr)
	err := app.RunContext(ctx, flagsFirst(app, os.Args))
	stop()
	var code exitCode
	switch {
	case errors.As(err, &code):
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(int(code))
	case err != nil:
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	dir          string
	kube         kube.Options
	podName      string
	podNamespace string
	settings     jobspec.Settings
}

// env lists a flag's environment twins, MAGEKUBE_… first.
func env(names ...string) []string { return names }

func newApp(stdout, stderr io.Writer) *cli.App {
	g := &globalOptions{kube: kube.Options{QPS: 20, Burst: 40}} // the defaults of --kube-qps and --kube-burst
	return &cli.App{
		Name:  "agent",
		Usage: "run Mage blocks and pipelines as Kubernetes Jobs, from a sidecar",
		Description: `The agent runs as a sidecar container in the Mage server pod. Mage (or
any client) writes a run request to <dir>/requests/<id>.json; the agent
claims it, builds a Job that inherits the Mage container's image, env,
volumes and scheduling, applies the project's k8s_executor_config, and
tracks the Job to the end, writing <dir>/runs/<id>/status.json on every
transition. See docs/config.md for the config and README.md for the
file contract.`,
		Version:              buildinfo.String(),
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                globalFlags(g),
		DefaultCommand:       "run",
		ExitErrHandler:       func(*cli.Context, error) {}, // main decides exit codes
		EnableBashCompletion: true,
		Suggest:              true, // "agent stauts": Did you mean "status"?
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w (agent %s --help lists the flags)", err, c.Command.Name)
		},
		Commands: []*cli.Command{
			runCommand(g),
			submitCommand(g, stdout),
			statusCommand(g, stdout),
			cancelCommand(g, stdout),
			logsCommand(g, stdout),
			renderCommand(g, stdout),
			completionCommand(stdout),
			{
				Name:  "version",
				Usage: "print the agent's version",
				Action: func(c *cli.Context) error {
					cli.ShowVersion(c) // the line --version prints
					return nil
				},
			},
		},
	}
}

// globalFlags are the flags every command shares. They are accepted
// before the subcommand (bound to g directly, defaults included) and,
// through commandFlags, after it as kubectl users type them.
func globalFlags(g *globalOptions) []cli.Flag { return sharedFlags(g, false) }

// commandFlags are the shared flags named, for one subcommand: set after
// the subcommand, each overrides the same flag given before it.
func commandFlags(g *globalOptions, names ...string) []cli.Flag {
	var out []cli.Flag
	for _, f := range sharedFlags(g, true) {
		if len(names) == 0 || slices.Contains(names, f.Names()[0]) {
			out = append(out, f)
		}
	}
	return out
}

// sharedFlags binds each flag to g: by Destination (defaults applied) at
// the app level, by Action (only when set) at a subcommand's.
func sharedFlags(g *globalOptions, local bool) []cli.Flag {
	str := func(f cli.StringFlag, dst *string) cli.Flag {
		if local {
			f.Action = func(_ *cli.Context, v string) error { *dst = v; return nil }
		} else {
			f.Destination = dst
		}
		return &f
	}
	return []cli.Flag{
		str(cli.StringFlag{Name: "dir", Value: protocol.DefaultRoot, EnvVars: env("MAGEKUBE_DIR"),
			Usage: "magekube root on the shared volume, as this container sees it (requests/, runs/)"}, &g.dir),
		str(cli.StringFlag{Name: "job-dir", EnvVars: env("MAGEKUBE_JOB_DIR"),
			Usage: "the same root as the Job's container sees it, when the Mage container mounts the volume elsewhere (default: --dir)"}, &g.settings.JobDir),
		str(cli.StringFlag{Name: "kubeconfig", EnvVars: env("MAGEKUBE_KUBECONFIG", "KUBECONFIG"),
			Usage: "kubeconfig file, or files separated by \":\" as KUBECONFIG takes them, for out-of-cluster use (default: in-cluster service account)"}, &g.kube.Kubeconfig),
		str(cli.StringFlag{Name: "context", EnvVars: env("MAGEKUBE_CONTEXT"),
			Usage: "the kubeconfig context to use (default: its current context)"}, &g.kube.Context),
		&cli.Float64Flag{Name: "kube-qps", Value: 20, EnvVars: env("MAGEKUBE_KUBE_QPS"),
			Usage:  "client-side sustained Kubernetes API requests per second",
			Action: func(_ *cli.Context, v float64) error { g.kube.QPS = float32(v); return nil }},
		&cli.IntFlag{Name: "kube-burst", Value: 40, EnvVars: env("MAGEKUBE_KUBE_BURST"),
			Usage:  "client-side Kubernetes API request burst above --kube-qps",
			Action: func(_ *cli.Context, v int) error { g.kube.Burst = v; return nil }},
		str(cli.StringFlag{Name: "pod-name", EnvVars: env("MAGEKUBE_POD_NAME", "KUBE_POD_NAME"),
			Usage: "the Mage server pod the Jobs inherit from (downward API metadata.name)"}, &g.podName),
		str(cli.StringFlag{Name: "pod-namespace", Aliases: []string{"n"}, EnvVars: env("MAGEKUBE_POD_NAMESPACE", "KUBE_NAMESPACE"),
			Usage: "namespace of that pod (downward API metadata.namespace)"}, &g.podNamespace),
		str(cli.StringFlag{Name: "server-container", EnvVars: env("MAGEKUBE_SERVER_CONTAINER", "MAGE_CONTAINER_NAME"),
			Usage: "the Mage container in the server pod (default: the first container that is not the agent's)"}, &g.settings.ServerContainer),
		str(cli.StringFlag{Name: "agent-container", Value: "magekube-agent", EnvVars: env("MAGEKUBE_AGENT_CONTAINER"),
			Usage: "the agent's own container name, never copied into Jobs"}, &g.settings.AgentContainer),
		str(cli.StringFlag{Name: "runner-image", EnvVars: env("MAGEKUBE_RUNNER_IMAGE"),
			Usage: "image the runner is copied from by the Job's init container (default: the agent container's image)"}, &g.settings.RunnerImage),
		str(cli.StringFlag{Name: "runner-path", Value: jobspec.DefaultRunnerPath, EnvVars: env("MAGEKUBE_RUNNER_PATH"),
			Usage: "path of the runner binary inside --runner-image"}, &g.settings.RunnerPath),
		str(cli.StringFlag{Name: "instance", Value: jobspec.DefaultInstance, EnvVars: env("MAGEKUBE_INSTANCE"),
			Usage: "label value that marks this agent's Jobs (agents sharing one request directory must share it)"}, &g.settings.Instance),
		&cli.DurationFlag{Name: "node-lost-after", Value: jobspec.DefaultNodeLostAfter, EnvVars: env("MAGEKUBE_NODE_LOST_AFTER"),
			Usage: "how long a Job's pod waits on a node that stopped reporting (after Kubernetes' 50 s grace) before it is evicted and the run fails as NodeLost; 0 keeps the Mage pod's tolerance (Kubernetes' default: 300 s)",
			Action: func(_ *cli.Context, v time.Duration) error {
				if v <= 0 {
					v = -1
				}
				g.settings.NodeLostAfter = v
				return nil
			}},
		str(cli.StringFlag{Name: "cluster-uuid", EnvVars: env("MAGEKUBE_CLUSTER_UUID"),
			Usage: "first part of Job names (default: the Mage container's MAGE_CLUSTER_UUID, else \"mage\")"}, &g.settings.ClusterUUID),
	}
}

// jobSettings completes the settings from the global flags.
func (g *globalOptions) jobSettings() jobspec.Settings {
	s := g.settings
	if s.JobDir == "" {
		s.JobDir = g.dir
	}
	s.Instance = jobspec.DNSLabel(s.Instance)
	return s
}
