// Command kindcluster builds the kind node image and creates or deletes a
// kind cluster through kind's Go API, for hack/ scripts and the demo.
//
//	kindcluster image                       build the node image, print its tag
//	kindcluster mage-image                  build the Mage server image, print its tag
//	kindcluster up NAME KUBECONFIG [IMAGE...] create NAME, load the image archives
//	kindcluster down NAME [KUBECONFIG]      delete NAME
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/magekube/magekube/test/kind"
)

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
		return fmt.Errorf("usage: kindcluster image | up NAME KUBECONFIG [ARCHIVE...] | down NAME [KUBECONFIG]")
	}
	switch args[0] {
	case "image":
		tag, err := nodeImage(ctx)
		if err != nil {
			return err
		}
		fmt.Println(tag)
		return nil
	case "mage-image":
		tag, err := kind.MageImage(ctx, options())
		if err != nil {
			return err
		}
		fmt.Println(tag)
		return nil
	case "up":
		if len(args) < 3 {
			return fmt.Errorf("usage: kindcluster up NAME KUBECONFIG [ARCHIVE...]")
		}
		tag, err := nodeImage(ctx)
		if err != nil {
			return err
		}
		repo, err := os.Getwd()
		if err != nil {
			return err
		}
		c, err := kind.Create(ctx, kind.Options{Name: args[1], ConfigPath: filepath.Join(repo, kind.ConfigFile),
			NodeImage: tag, Kubeconfig: args[2], Log: os.Stderr})
		if err != nil {
			return err
		}
		return c.LoadImages(args[3:]...)
	case "down":
		if len(args) < 2 {
			return fmt.Errorf("usage: kindcluster down NAME [KUBECONFIG]")
		}
		kc := ""
		if len(args) > 2 {
			kc = args[2]
		}
		return kind.Delete(args[1], kc, os.Stderr)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func options() kind.BuildOptions {
	repo, _ := os.Getwd()
	cache := os.Getenv("MAGEKUBE_CACHE")
	if cache == "" {
		home, _ := os.UserCacheDir()
		cache = filepath.Join(home, "magekube")
	}
	return kind.BuildOptions{Repo: repo, BinDir: os.Getenv("MAGEKUBE_BIN_DIR"), Cache: cache, Log: os.Stderr}
}

func nodeImage(ctx context.Context) (string, error) {
	o := options()
	if o.BinDir == "" {
		return "", fmt.Errorf("MAGEKUBE_BIN_DIR is not set (hack/build-bins.sh prints it)")
	}
	return kind.NodeImage(ctx, o)
}
