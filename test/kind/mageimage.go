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
	// MagePsycopgVersion is the PostgreSQL driver Mage's own image carries
	// for MAGE_DATABASE_CONNECTION_URL (mage-ai's postgres extra).
	MagePsycopgVersion = "2.9.10"
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
	sum := sha256.Sum256([]byte(strings.Join([]string{"4", MageVersion, MageKubernetesVersion, MagePsycopgVersion, debianSuite, strings.Join(magePackages, ",")}, " ")))
	tag := "magekube/mage:" + MageVersion + "-" + hex.EncodeToString(sum[:])[:12]
	if docker(ctx, nil, "image", "inspect", tag) == nil {
		return tag, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "building Mage server image %s: mage-ai %s from PyPI (first time only; usually 3 min on 2 cores)\n", tag, MageVersion)
	base, err := rootfsImage(ctx, o, "magekube/mage-base", magePackages)
	if err != nil {
		return "", err
	}
	pipCache := filepath.Join(os.Getenv("HOME"), ".cache", "pip")
	if err := os.MkdirAll(pipCache, 0o755); err != nil {
		return "", err
	}
	args := []string{"-v", pipCache + ":/root/.cache/pip"}
	// The host's trust store, for a network that re-signs TLS.
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		args = append(args, "-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro", "-e", "PIP_CERT=/etc/ssl/host-ca.crt")
	}
	install := fmt.Sprintf(mageInstall, MageVersion, MageKubernetesVersion, MagePsycopgVersion)
	err = commitFrom(ctx, base, tag, args, func(name string) error { return script(ctx, name, install) },
		"ENV PATH=/opt/mage/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV PYTHONPATH=:/home/src",
		"WORKDIR /home/src",
		`ENTRYPOINT ["/usr/bin/tini", "--"]`,
		`CMD ["mage", "start", "default_repo"]`)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "built Mage server image %s in %s\n", tag, time.Since(start).Round(time.Second))
	pruneOthers(ctx, "magekube/mage", tag)
	return tag, nil
}

// mageInstall installs mage-ai (%s), its Kubernetes client (%s) and
// psycopg2 (%s) into /opt/mage, and Mage's /app/run_app.sh.
const mageInstall = `set -o errexit -o nounset -o pipefail
python3 -m venv /opt/mage
/opt/mage/bin/pip install --quiet --disable-pip-version-check mage-ai==%s kubernetes==%s psycopg2-binary==%s
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
`

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

// PostgresImage returns the tag of a PostgreSQL server image built from
// Debian 12's postgresql-15 package, building it when the Docker engine
// lacks it: Mage's database for the e2e suite and the demo, as the
// production users of Mage's k8s executor run it (the block Jobs and the
// server share it over the network). Its entrypoint initialises an empty
// data directory with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB,
// password authentication from anywhere, and runs the server as postgres.
func PostgresImage(ctx context.Context, o BuildOptions) (string, error) {
	pkgs := []string{"postgresql-15", "procps"}
	sum := sha256.Sum256([]byte(strings.Join(append([]string{"3", debianSuite}, pkgs...), " ")))
	tag := "magekube/postgres:15-" + hex.EncodeToString(sum[:])[:12]
	if docker(ctx, nil, "image", "inspect", tag) == nil {
		return tag, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "building PostgreSQL image %s from Debian's postgresql-15 (first time only; usually 1 min)\n", tag)
	base, err := rootfsImage(ctx, o, "magekube/postgres-base", pkgs)
	if err != nil {
		return "", err
	}
	const setup = `set -o errexit -o nounset -o pipefail
cat >/usr/local/bin/postgres-entrypoint <<'SH'
#!/bin/sh
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  echo "$POSTGRES_PASSWORD" >/tmp/pwfile
  chown postgres /tmp/pwfile
  su postgres -s /bin/sh -c "$bin/initdb -D $PGDATA -U $POSTGRES_USER --pwfile=/tmp/pwfile -A scram-sha-256" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $PGDATA -o '-c listen_addresses=' -w -s start"
  PGPASSWORD=$POSTGRES_PASSWORD su postgres -s /bin/sh -c "$bin/psql -q -h /var/run/postgresql -U $POSTGRES_USER -d postgres -c 'CREATE DATABASE \"$POSTGRES_DB\"'"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $PGDATA -m fast -w -s stop"
fi
exec su postgres -s /bin/sh -c "exec $bin/postgres -D $PGDATA -c listen_addresses='*'"
SH
chmod 0755 /usr/local/bin/postgres-entrypoint
mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
rm -rf /var/lib/apt/lists/* /var/cache/apt/*
`
	err = commitFrom(ctx, base, tag, nil, func(name string) error { return script(ctx, name, setup) },
		`ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]`,
		"ENV PGDATA=/var/lib/postgresql/data")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "built PostgreSQL image %s in %s\n", tag, time.Since(start).Round(time.Second))
	pruneOthers(ctx, "magekube/postgres", tag)
	return tag, nil
}
