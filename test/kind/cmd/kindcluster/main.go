// Command kindcluster builds the images kind runs here and creates or
// deletes kind clusters through kind's Go API, for hack/demo.sh and by hand.
//
//	kindcluster image          build the node image, print its tag
//	kindcluster mage-image     build the Mage server image, print its tag
//	kindcluster demo-up DIR    create the demo's cluster "magekube" (kind's
//	                           default kubeconfig, context kind-magekube),
//	                           load every image, write the example stack's
//	                           overlay for it into DIR/overlay
//	kindcluster down NAME      delete cluster NAME
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/magekube/magekube/test/framework"
	"github.com/magekube/magekube/test/kind"
)

// DemoCluster is the demo's kind cluster.
const DemoCluster = "magekube"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kindcluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		return fmt.Errorf("usage: kindcluster image | mage-image | demo-up DIR | down NAME")
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	o := kind.BuildOptions{Repo: repo, BinDir: os.Getenv("MAGEKUBE_BIN_DIR"), Cache: kind.DefaultCache(), Log: os.Stderr}
	switch {
	case args[0] == "image":
		if o.BinDir == "" {
			return fmt.Errorf("MAGEKUBE_BIN_DIR is not set (hack/build-bins.sh prints it)")
		}
		return printTag(kind.NodeImage(ctx, o))
	case args[0] == "mage-image":
		return printTag(kind.MageImage(ctx, o))
	case args[0] == "postgres-image":
		return printTag(kind.PostgresImage(ctx, o))
	case args[0] == "demo-up" && len(args) == 2:
		if o.BinDir == "" {
			return fmt.Errorf("MAGEKUBE_BIN_DIR is not set (hack/build-bins.sh prints it)")
		}
		e, err := framework.StartKind(ctx, framework.KindOptions{Name: DemoCluster, Work: args[1], SharedDir: kind.SharedDir})
		if err != nil {
			return err
		}
		return framework.KindStack(filepath.Join(args[1], "overlay"), repo, "mage", kind.SharedDir, e)
	case args[0] == "down" && len(args) == 2:
		return kind.Delete(args[1], "", os.Stderr)
	}
	return fmt.Errorf("usage: kindcluster image | mage-image | demo-up DIR | down NAME")
}

func printTag(tag string, err error) error {
	if err != nil {
		return err
	}
	fmt.Println(tag)
	return nil
}
