// Command testcluster starts and stops the offline test cluster for
// humans and scripts (make cluster-up / cluster-down).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/test/cluster"
	testimages "github.com/magekube/magekube/test/images"
)

type upOptions struct {
	binDir, imagesDir, name string
	nodes, fakeNodes        int
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
		Usage: "start or stop the offline test cluster (real etcd, API server, controllers, scheduler; real nodes as root)",
		Commands: []*cli.Command{{
			Name:  "up",
			Usage: "start a cluster and print `export KUBECONFIG=…` as the last line",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "bin-dir", Required: true, EnvVars: []string{"MAGEKUBE_BIN_DIR"}, Destination: &o.binDir, Usage: "directory with etcd and the Kubernetes binaries (hack/build-bins.sh)"},
				&cli.StringFlag{Name: "images-dir", EnvVars: []string{"MAGEKUBE_IMAGES_DIR"}, Destination: &o.imagesDir, Usage: "import every *.tar in it into each node"},
				&cli.IntFlag{Name: "nodes", EnvVars: []string{"MAGEKUBE_NODES"}, Destination: &o.nodes, Usage: "real nodes to start (needs root); 0 for the control plane only"},
				&cli.IntFlag{Name: "fake-nodes", EnvVars: []string{"MAGEKUBE_FAKE_NODES"}, Destination: &o.fakeNodes, Usage: "kwok nodes to start (no root): pods on them run no container and end when annotated " + cluster.ExitCodeAnnotation},
				&cli.StringFlag{Name: "name", Value: "dev", EnvVars: []string{"MAGEKUBE_CLUSTER_NAME"}, Destination: &o.name, Usage: "cluster name (its directory under " + cluster.Root + ")"},
			},
			Action: func(c *cli.Context) error { return up(c.Context, o) },
		}, {
			Name:  "down",
			Usage: "stop every cluster and remove its processes, mounts, cgroups, network namespaces and files",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Value: true, Destination: &all, Usage: "also remove leftovers of crashed runs"}},
			Action: func(*cli.Context) error {
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
	var images []string
	var err error
	switch {
	case o.imagesDir != "":
		images, err = filepath.Glob(filepath.Join(o.imagesDir, "*.tar"))
	case o.nodes > 0: // build them from this checkout
		images, err = testimages.Build(ctx, ".", filepath.Join(cluster.Root, o.name+"-images"))
	}
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{BinDir: o.binDir, WorkDir: dir, Nodes: o.nodes, FakeNodes: o.fakeNodes, Images: images})
	if err != nil {
		return err
	}
	if err := c.Detach(); err != nil {
		return err
	}
	fmt.Printf("cluster %q is up: %d node(s), %d fake node(s); logs in %s/logs\n", o.name, o.nodes, o.fakeNodes, dir)
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	return nil
}
