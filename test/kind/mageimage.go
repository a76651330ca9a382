package kind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The real Mage server the e2e suite and the demo run: the pinned mage-ai
// release from PyPI (hack/lib.sh pins the same; a test keeps them equal),
// with the Kubernetes client its k8s executor imports.
const (
	MageVersion           = "0.9.80"
	MageKubernetesVersion = "33.1.0"
)

// magePackages are the Mage image's Debian packages: Debian 12's Python
// 3.11 and what mage-ai's wheels load from the system.
var magePackages = []string{"python3", "python3-venv", "ca-certificates", "libgomp1", "procps", "tini"}

// MageImage returns the tag of a Mage server image built from the pinned
// mage-ai release, building it when the Docker engine lacks it: Debian
// 12's Python from Debian's packages (debootstrap), mage-ai installed by
// pip from PyPI into /opt/mage, `mage start default_repo` in /home/src
// and /app/run_app.sh as in Mage's own image. The host's pip cache is
// mounted while installing.
func MageImage(ctx context.Context, o BuildOptions) (string, error) {
	sum := sha256.Sum256([]byte(strings.Join([]string{"2", MageVersion, MageKubernetesVersion, debianSuite, strings.Join(magePackages, ",")}, " ")))
	tag := "magekube/mage:" + MageVersion + "-" + hex.EncodeToString(sum[:])[:12]
	if docker(ctx, nil, "image", "inspect", tag) == nil {
		return tag, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "building Mage server image %s: mage-ai %s from PyPI (first time only; usually 4 min on 2 cores)\n", tag, MageVersion)
	base, err := rootfsImage(ctx, o, "magekube/mage-base", magePackages)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("magekube-mage-build-%d", os.Getpid())
	pipCache := filepath.Join(os.Getenv("HOME"), ".cache", "pip")
	if err := os.MkdirAll(pipCache, 0o755); err != nil {
		return "", err
	}
	args := []string{"run", "-d", "--name", name, "-v", pipCache + ":/root/.cache/pip"}
	// The host's trust store, for a network that re-signs TLS.
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		args = append(args, "-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro", "-e", "PIP_CERT=/etc/ssl/host-ca.crt")
	}
	if err := docker(ctx, nil, append(args, "--entrypoint", "sleep", base, "infinity")...); err != nil {
		return "", err
	}
	defer docker(context.Background(), nil, "rm", "-f", name) //nolint:errcheck
	install := fmt.Sprintf(`set -o errexit -o nounset -o pipefail
python3 -m venv /opt/mage
/opt/mage/bin/pip install --quiet --disable-pip-version-check mage-ai==%s kubernetes==%s
/opt/mage/bin/mage --help >/dev/null
mkdir -p /home/src /app
# As in Mage's own image: Mage's k8s executors run "/app/run_app.sh mage
# run ..."; with no arguments it starts the project.
cat >/app/run_app.sh <<'SH'
#!/bin/sh
if [ "$#" -gt 0 ]; then exec "$@"; fi
exec mage start "${PROJECT_NAME:-default_repo}"
SH
chmod 0755 /app/run_app.sh
rm -rf /root/.cache/pip-tmp /var/lib/apt/lists/* /var/cache/apt/*
`, MageVersion, MageKubernetesVersion)
	if err := docker(ctx, strings.NewReader(install), "exec", "-i", name, "bash", "-s"); err != nil {
		return "", err
	}
	err = docker(ctx, nil, "commit",
		"--change", "ENV PATH=/opt/mage/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--change", "ENV PYTHONPATH=:/home/src",
		"--change", "WORKDIR /home/src",
		"--change", `ENTRYPOINT ["/usr/bin/tini", "--"]`,
		"--change", `CMD ["mage", "start", "default_repo"]`,
		name, tag)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "built Mage server image %s in %s\n", tag, time.Since(start).Round(time.Second))
	pruneOthers(ctx, "magekube/mage", tag)
	return tag, nil
}

// rootfsImage is a Debian root filesystem with pkgs as a Docker image,
// debootstrapped once per package list.
func rootfsImage(ctx context.Context, o BuildOptions, repo string, pkgs []string) (string, error) {
	sum := sha256.Sum256([]byte(debianSuite + " " + strings.Join(pkgs, ",")))
	tag := repo + ":" + debianSuite + "-" + hex.EncodeToString(sum[:])[:12]
	if docker(ctx, nil, "image", "inspect", tag) == nil {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "magekube-rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(o.Log, "  debootstrap %s with %d packages for %s (about 1 min)\n", debianSuite, len(pkgs), repo)
	if err := debootstrap(ctx, dir+"/rootfs", pkgs); err != nil {
		return "", err
	}
	return tag, importDir(ctx, dir+"/rootfs", tag)
}
