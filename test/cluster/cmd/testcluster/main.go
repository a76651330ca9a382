// Command testcluster starts and stops the control-plane test cluster
// (etcd, API server, controllers, scheduler, kwok nodes) for humans and
// scripts (make cluster-up / cluster-down). Clusters with real nodes are
// kind's (test/kind, make demo).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/test/cluster"
)

type upOptions struct {
	binDir, name string
	fakeNodes    int
	jaegerUI     string
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	o := &upOptions{}
	var all bool
	return &cli.App{
		Name:  "testcluster",
		Usage: "start or stop the control-plane test cluster (real etcd, API server, controllers, scheduler; kwok nodes)",
		Commands: []*cli.Command{{
			Name:  "up",
			Usage: "start a cluster and print `export KUBECONFIG=…` as the last line",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "bin-dir", Required: true, EnvVars: []string{"MAGEKUBE_BIN_DIR"}, Destination: &o.binDir, Usage: "directory with etcd and the Kubernetes binaries (hack/build-bins.sh)"},
				&cli.IntFlag{Name: "fake-nodes", EnvVars: []string{"MAGEKUBE_FAKE_NODES"}, Destination: &o.fakeNodes, Usage: "kwok nodes to start: pods on them run no container and end when annotated " + cluster.ExitCodeAnnotation},
				&cli.StringFlag{Name: "jaeger-ui", EnvVars: []string{"MAGEKUBE_JAEGER_UI"}, Destination: &o.jaegerUI, Usage: "also start Jaeger, its UI and API on this address (e.g. 127.0.0.1:16686)"},
				&cli.StringFlag{Name: "name", Value: "dev", EnvVars: []string{"MAGEKUBE_CLUSTER_NAME"}, Destination: &o.name, Usage: "cluster name (its directory under " + cluster.Root + ")"},
			},
			Action: func(c *cli.Context) error { return up(c.Context, o) },
		}, {
			Name:  "down",
			Usage: "stop every cluster (or only --name) and remove its processes and files",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Value: true, Destination: &all, Usage: "also remove leftovers of crashed runs"},
				&cli.StringFlag{Name: "name", Destination: &o.name, Usage: "stop only this cluster (its directory under " + cluster.Root + ")"},
			},
			Action: func(*cli.Context) error {
				if o.name != "" {
					return downOne(o.name)
				}
				cluster.DownStale(all)
				return nil
			},
		}},
	}
}

func up(ctx context.Context, o *upOptions) error {
	cluster.DownStale(false)
	dir := filepath.Join(cluster.Root, o.name)
	if _, err := os.Stat(filepath.Join(dir, cluster.StateFile)); err == nil {
		return fmt.Errorf("cluster %q is already up (make cluster-down first)", o.name)
	}
	c, err := cluster.Start(ctx, cluster.Options{BinDir: o.binDir, WorkDir: dir, FakeNodes: o.fakeNodes,
		Jaeger: o.jaegerUI != "", JaegerQueryAddr: o.jaegerUI})
	if err != nil {
		return err
	}
	if err := c.Detach(); err != nil {
		return err
	}
	fmt.Printf("cluster %q is up: %d fake node(s); logs in %s/logs\n", o.name, o.fakeNodes, dir)
	if c.Jaeger != nil {
		fmt.Printf("jaeger: UI %s, OTLP/HTTP %s\n", c.Jaeger.QueryURL, c.Jaeger.OTLPHTTP)
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	return nil
}

// downOne removes one cluster by name, leaving every other one running.
func downOne(name string) error {
	dir := filepath.Join(cluster.Root, name)
	if _, err := os.Stat(filepath.Join(dir, cluster.StateFile)); err == nil {
		return cluster.Down(dir)
	}
	return nil
}
