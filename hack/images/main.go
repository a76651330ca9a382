// Command images builds the release images without Docker or a registry:
// the agent image (agent and runner) and the runner image, each one OCI
// image index for linux/amd64 and linux/arm64 with an SPDX SBOM per
// platform, written as OCI image layouts. `make images`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	out := flag.String("out", "_output/images", "directory for the OCI image layouts (one per image) and the SBOMs")
	version := flag.String("version", "dev", "the images' version (tag, org.opencontainers.image.version)")
	commit := flag.String("commit", "unknown", "the source commit (org.opencontainers.image.revision)")
	registry := flag.String("registry", "ghcr.io/magekube", "the repository prefix the images are named for")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, Options{Out: *out, Version: *version, Commit: *commit, Registry: *registry, Repo: "."}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options, stdout *os.File) error {
	built, err := Build(ctx, o)
	if err != nil {
		return err
	}
	for _, b := range built {
		fmt.Fprintf(stdout, "%s:%s  %s  (%s)\n", b.Name, o.Version, b.Digest, filepath.Join(o.Out, b.Dir))
	}
	return nil
}
