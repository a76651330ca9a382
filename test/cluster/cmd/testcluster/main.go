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
	"github.com/magekube/magekube/test/framework"
	testimages "github.com/magekube/magekube/test/images"
	"k8s.io/client-go/tools/clientcmd"
)

type upOptions struct {
	binDir, imagesDir, name string
	nodes, fakeNodes        int
	jaegerUI                string
}

type deployOptions struct {
	kubeconfig, namespace, shared, otlp string
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	o := &upOptions{}
	d := &deployOptions{}
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
				&cli.StringFlag{Name: "jaeger-ui", EnvVars: []string{"MAGEKUBE_JAEGER_UI"}, Destination: &o.jaegerUI, Usage: "also start Jaeger, its UI and API on this address (e.g. 127.0.0.1:16686), its OTLP receivers where pods reach them"},
				&cli.StringFlag{Name: "name", Value: "dev", EnvVars: []string{"MAGEKUBE_CLUSTER_NAME"}, Destination: &o.name, Usage: "cluster name (its directory under " + cluster.Root + ")"},
			},
			Action: func(c *cli.Context) error { return up(c.Context, o) },
		}, {
			Name:  "deploy-example",
			Usage: "deploy " + framework.ExampleStack + " with the changes an offline cluster needs (hostPath for the RWX claim, the test images, the API server's address, the host's Jaeger)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "kubeconfig", Required: true, EnvVars: []string{"KUBECONFIG"}, Destination: &d.kubeconfig},
				&cli.StringFlag{Name: "namespace", Value: "mage", Destination: &d.namespace},
				&cli.StringFlag{Name: "shared", Required: true, Destination: &d.shared, Usage: "host directory mounted as the project volume"},
				&cli.StringFlag{Name: "otlp", Destination: &d.otlp, Usage: "OTLP/HTTP endpoint for the agent's traces"},
			},
			Action: func(c *cli.Context) error { return deployExample(c.Context, d) },
		}, {
			Name:  "down",
			Usage: "stop every cluster (or only --name) and remove its processes, mounts, cgroups, network namespaces and files",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Value: true, Destination: &all, Usage: "also remove leftovers of crashed runs"},
				&cli.StringFlag{Name: "name", Destination: &o.name, Usage: "stop only this cluster (its directory under " + cluster.Root + "), and its images"},
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
	c, err := cluster.Start(ctx, cluster.Options{BinDir: o.binDir, WorkDir: dir, Nodes: o.nodes, FakeNodes: o.fakeNodes, Images: images,
		Jaeger: o.jaegerUI != "", JaegerQueryAddr: o.jaegerUI})
	if err != nil {
		return err
	}
	if err := c.Detach(); err != nil {
		return err
	}
	fmt.Printf("cluster %q is up: %d node(s), %d fake node(s); logs in %s/logs\n", o.name, o.nodes, o.fakeNodes, dir)
	if c.Jaeger != nil {
		fmt.Printf("jaeger: UI %s, OTLP/HTTP %s\n", c.Jaeger.QueryURL, c.Jaeger.OTLPHTTP)
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	return nil
}

func deployExample(ctx context.Context, d *deployOptions) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", d.kubeconfig)
	if err != nil {
		return err
	}
	built, err := framework.BuildStack(framework.ExampleStack)
	if err != nil {
		return err
	}
	objs, err := framework.OfflineStack(built, framework.StackOptions{
		Namespace: d.namespace, SharedDir: d.shared, ServerImage: testimages.Server, AgentImage: testimages.Agent,
		APIServer: cfg.Host, OTLPEndpoint: d.otlp,
	})
	if err != nil {
		return err
	}
	if err := framework.Apply(ctx, cfg, objs); err != nil {
		return err
	}
	fmt.Printf("deployed %s into namespace %s (%d objects)\n", framework.ExampleStack, d.namespace, len(objs))
	return nil
}

// downOne removes one cluster by name, leaving every other one running.
func downOne(name string) error {
	dir := filepath.Join(cluster.Root, name)
	if _, err := os.Stat(filepath.Join(dir, cluster.StateFile)); err == nil {
		if err := cluster.Down(dir); err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(cluster.Root, name+"-images"))
}
