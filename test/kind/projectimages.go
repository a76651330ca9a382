package kind

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/magekube/magekube/test/images"
)

// Project images, as the e2e suite and the demo load them into kind.
const (
	AgentImage  = "magekube/agent:dev"
	RunnerImage = "magekube/runner:dev"
)

// ProjectImages builds the agent and runner images from Dockerfile.agent
// and Dockerfile.runner with Docker, as a user does, on base images made
// here (no registry): a Go image (Debian's root filesystem and this
// machine's Go toolchain) and a static nonroot base (LocalBases). The
// build downloads modules from the Go module proxy. On a host that can
// pull, MAGEKUBE_PUBLIC_BASES=1 builds on the Dockerfiles' defaults.
func ProjectImages(ctx context.Context, o BuildOptions, version string) error {
	var args []string
	if os.Getenv("MAGEKUBE_PUBLIC_BASES") == "" {
		goImage, base, err := LocalBases(ctx, o)
		if err != nil {
			return err
		}
		args = append(args, "--build-arg", "GO_IMAGE="+goImage, "--build-arg", "BASE_IMAGE="+base)
	}
	start := time.Now()
	fmt.Fprintln(o.Log, "building the agent and runner images with docker build (about 3 min when the code changed)")
	for file, tag := range map[string]string{"Dockerfile.agent": AgentImage, "Dockerfile.runner": RunnerImage} {
		build := append([]string{"build", "-q", "-f", filepath.Join(o.Repo, file), "-t", tag, "--build-arg", "VERSION=" + version}, args...)
		if err := dockerEnv(ctx, []string{"DOCKER_BUILDKIT=0"}, append(build, o.Repo)...); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Log, "built the agent and runner images in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// LocalBases returns the Go build image and the static nonroot base,
// making each once per version.
func LocalBases(ctx context.Context, o BuildOptions) (goImage, base string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOROOT GOVERSION: %w", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 {
		return "", "", fmt.Errorf("go env GOROOT GOVERSION: %q", out)
	}
	goroot := fields[0]
	goImage = "magekube/golang:" + strings.TrimPrefix(fields[1], "go")
	if docker(ctx, nil, "image", "inspect", goImage) != nil {
		root, err := rootfsImage(ctx, o, "magekube/build-base", []string{"ca-certificates", "git"})
		if err != nil {
			return "", "", err
		}
		err = commitFrom(ctx, root, goImage, nil, func(name string) error {
			if err := docker(ctx, nil, "cp", goroot, name+":/usr/local/go"); err != nil {
				return err
			}
			// The machine's trust store, for a network that re-signs TLS.
			if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
				return nil
			}
			return docker(ctx, nil, "cp", "/etc/ssl/certs/ca-certificates.crt", name+":/etc/ssl/certs/ca-certificates.crt")
		},
			"ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"ENV GOPATH=/go", "ENV GOTOOLCHAIN=local",
			"ENV GOPROXY="+envOr("GOPROXY", "https://proxy.golang.org,direct"),
			"WORKDIR /go")
		if err != nil {
			return "", "", err
		}
	}
	base = "magekube/static:nonroot"
	if docker(ctx, nil, "image", "inspect", base) != nil {
		dir, err := os.MkdirTemp("", "magekube-static-")
		if err != nil {
			return "", "", err
		}
		defer os.RemoveAll(dir)
		archive := filepath.Join(dir, "static.tar")
		if err := images.WriteStaticBase(archive, base); err != nil {
			return "", "", err
		}
		if err := docker(ctx, nil, "load", "-i", archive); err != nil {
			return "", "", err
		}
	}
	return goImage, base, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
