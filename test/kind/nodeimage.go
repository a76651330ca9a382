package kind

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/magekube/magekube/test/images"
)

// The pinned versions the node image carries. kubeadm v1.34 asks for
// exactly these image tags (its constants PauseVersion, CoreDNSVersion
// and the etcd version for 1.34); hack/build-bins.sh builds the binaries.
const (
	KubeVersion    = "v1.34.4"
	EtcdTag        = "3.6.5-0"
	CoreDNSVersion = "v1.12.1"
	PauseTag       = "3.10.1"
	// KindVersion is sigs.k8s.io/kind in go.mod: its node entrypoint and
	// systemd units go into the image, read from Go's module cache.
	KindVersion = "v0.33.0"
	// debianSuite is the node's root filesystem, from Debian's packages.
	debianSuite  = "bookworm"
	debianMirror = "http://deb.debian.org/debian"
	// builderRevision changes the image tag when this file changes how
	// the image is put together.
	builderRevision = "2"
)

// nodePackages are the node's Debian packages: systemd, Debian's
// containerd and runc, the CNI plugins the node's own network uses
// (magekube-cni), and what kubelet and kube-proxy run.
var nodePackages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
	"iptables", "nftables", "conntrack", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "e2fsprogs", "bash", "ca-certificates", "procps", "jq", "socat",
}

// proxyPackages are kube-proxy's image: what it execs (iptables, conntrack).
var proxyPackages = []string{"iptables", "nftables", "conntrack", "kmod"}

// kindFiles are taken from kind's own node image (images/base/files in
// the kind module): its entrypoint, the kubelet units and helper scripts.
// containerd's unit and config are the project's (test/kind/node).
var kindFiles = []string{
	"usr/local/bin/entrypoint",
	"kind/bin/mount-product-files.sh",
	"kind/bin/undo-mount-hacks.sh",
	"kind/bin/create-kubelet-cgroup-v2.sh",
	"etc/systemd/system/kubelet.service",
	"etc/systemd/system/kubelet.slice",
	"etc/systemd/system/undo-mount-hacks.service",
	"etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
	"etc/systemd/system/kubelet.service.d/11-kind.conf",
	"etc/sysctl.d/10-network-magic.conf",
	"etc/sysctl.d/10-network-security.conf",
	"etc/default/kubelet",
}

// BuildOptions say where the pieces of the node image come from.
type BuildOptions struct {
	Repo   string // module root: test/kind/node, runc-nocap, pause
	BinDir string // hack/build-bins.sh: Kubernetes, etcd, coredns
	Cache  string // root filesystems are kept here, keyed by content
	Log    io.Writer
}

// DefaultCache is where built root filesystems are kept: $MAGEKUBE_CACHE,
// else magekube in the user's cache directory (hack/lib.sh's CACHE).
func DefaultCache() string {
	if c := os.Getenv("MAGEKUBE_CACHE"); c != "" {
		return c
	}
	dir, _ := os.UserCacheDir()
	return filepath.Join(dir, "magekube")
}

// NodeImage returns the tag of the kind node image, building it when the
// Docker engine does not have it. Nothing is pulled: the root filesystem
// comes from Debian's packages (debootstrap), the binaries from the Go
// module proxy, and every image kubeadm starts is written here and
// imported into the node's containerd.
//
// MAGEKUBE_KIND_NODE_IMAGE names another node image instead, such as
// kind's public kindest/node on a host that can pull it.
func NodeImage(ctx context.Context, o BuildOptions) (string, error) {
	if image := os.Getenv("MAGEKUBE_KIND_NODE_IMAGE"); image != "" {
		return image, nil
	}
	key, err := nodeKey(o.Repo)
	if err != nil {
		return "", err
	}
	tag := "magekube/kind-node:" + KubeVersion + "-" + key
	if docker(ctx, nil, "image", "inspect", tag) == nil {
		return tag, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "building kind node image %s (first time only; usually 1.5 min on 2 cores)\n", tag)
	base, err := rootfsImage(ctx, o, "magekube/kind-base", nodePackages)
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "magekube-node-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := componentImages(ctx, o, work); err != nil {
		return "", err
	}
	if err := assemble(ctx, o, base, tag, work); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "built kind node image %s in %s\n", tag, time.Since(start).Round(time.Second))
	pruneOthers(ctx, "magekube/kind-node", tag)
	return tag, nil
}

// pruneOthers removes the other tags of repo that this code built before:
// a changed node file or version leaves no stale GiB behind.
func pruneOthers(ctx context.Context, repo, keep string) {
	out, err := exec.CommandContext(ctx, "docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}").Output()
	if err != nil {
		return
	}
	for _, ref := range strings.Fields(string(out)) {
		if ref != keep {
			_ = docker(ctx, nil, "rmi", ref)
		}
	}
}

// nodeKey hashes what the image is made of: versions, package lists, the
// project's node files and the capability wrapper's source.
func nodeKey(repo string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, builderRevision, KubeVersion, EtcdTag, CoreDNSVersion, PauseTag, KindVersion, debianSuite,
		strings.Join(nodePackages, ","), strings.Join(proxyPackages, ","), strings.Join(kindFiles, ","))
	for _, dir := range []string{"test/kind/node", "test/kind/runc-nocap", "test/images/pause"} {
		err := filepath.WalkDir(filepath.Join(repo, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repo, p)
			fmt.Fprintf(h, "%s %o %d\n", rel, info.Mode().Perm(), len(data))
			h.Write(data)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// importDir imports the root filesystem dir as the Docker image tag.
func importDir(ctx context.Context, dir, tag string) error {
	tarCmd := exec.CommandContext(ctx, "tar", "-C", dir, "-c", ".")
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := tarCmd.Start(); err != nil {
		return err
	}
	importErr := docker(ctx, pipe, "import", "-", tag)
	if err := tarCmd.Wait(); err != nil {
		return fmt.Errorf("tar the root filesystem %s: %w", dir, err)
	}
	return importErr
}

func debootstrap(ctx context.Context, dir string, pkgs []string) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		script := "apt-get install -y --no-install-recommends debootstrap || { apt-get update -qq && apt-get install -y --no-install-recommends debootstrap; }"
		install := exec.CommandContext(ctx, "sh", "-c", script)
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := install.CombinedOutput(); err != nil {
			return fmt.Errorf("install debootstrap: %w\n%s", err, out)
		}
	}
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(pkgs, ","), debianSuite, dir, debianMirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s: %w\n%s", dir, err, tail(out, 2000))
	}
	return nil
}

// proxyRootfs is kube-proxy's root filesystem tarball, cached by package list.
func proxyRootfs(ctx context.Context, o BuildOptions) (string, error) {
	sum := sha256.Sum256([]byte(debianSuite + " " + strings.Join(proxyPackages, ",")))
	path := filepath.Join(o.Cache, "kind", "kube-proxy-rootfs-"+debianSuite+"-"+hex.EncodeToString(sum[:])[:12]+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "magekube-proxy-rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(o.Log, "  debootstrap %s for kube-proxy (about 40 s)\n", debianSuite)
	if err := debootstrap(ctx, dir+"/rootfs", proxyPackages); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if out, err := exec.CommandContext(ctx, "tar", "-C", dir+"/rootfs", "--exclude=./usr/share/doc", "--exclude=./usr/share/man",
		"--exclude=./usr/share/locale", "--exclude=./var/cache/apt", "--exclude=./var/lib/apt/lists", "-cf", tmp, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar kube-proxy's root filesystem: %w\n%s", err, out)
	}
	return path, os.Rename(tmp, path)
}

// componentImages writes the images kubeadm and the kubelet start, under
// the names kubeadm v1.34 expects, as docker-archive tarballs in work/images.
func componentImages(ctx context.Context, o BuildOptions, work string) error {
	out := filepath.Join(work, "images")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	pause := filepath.Join(work, "pause")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", pause, "./test/images/pause")
	build.Dir, build.Env = o.Repo, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %w\n%s", err, b)
	}
	proxyBase, err := proxyRootfs(ctx, o)
	if err != nil {
		return err
	}
	bin := func(n string) string { return filepath.Join(o.BinDir, n) }
	reg := "registry.k8s.io/"
	for _, c := range []struct {
		ref, bin, name string
		entrypoint     []string
		rootfs         string
	}{
		{reg + "pause:" + PauseTag, pause, "pause", []string{"/usr/local/bin/pause"}, ""},
		{reg + "etcd:" + EtcdTag, bin("etcd"), "etcd", nil, ""},
		{reg + "kube-apiserver:" + KubeVersion, bin("kube-apiserver"), "kube-apiserver", nil, ""},
		{reg + "kube-controller-manager:" + KubeVersion, bin("kube-controller-manager"), "kube-controller-manager", nil, ""},
		{reg + "kube-scheduler:" + KubeVersion, bin("kube-scheduler"), "kube-scheduler", nil, ""},
		{reg + "coredns/coredns:" + CoreDNSVersion, bin("coredns"), "coredns", []string{"/usr/local/bin/coredns"}, ""},
		{reg + "kube-proxy:" + KubeVersion, bin("kube-proxy"), "kube-proxy", nil, proxyBase},
	} {
		p := filepath.Join(out, strings.NewReplacer("/", "_", ":", "_").Replace(c.ref)+".tar")
		if err := images.WriteComponent(p, c.ref, c.bin, c.name, c.entrypoint, c.rootfs); err != nil {
			return fmt.Errorf("image %s: %w", c.ref, err)
		}
	}
	return nil
}

// assemble puts the node image together in a container of the base image,
// as kind's own node-image builder does, and commits it as tag.
func assemble(ctx context.Context, o BuildOptions, base, tag, work string) error {
	tree := filepath.Join(work, "tree")
	if err := stageTree(ctx, o, tree); err != nil {
		return err
	}
	return commitFrom(ctx, base, tag, []string{"--privileged"}, func(name string) error {
		if err := docker(ctx, nil, "cp", tree+"/.", name+":/"); err != nil {
			return err
		}
		if err := docker(ctx, nil, "cp", filepath.Join(work, "images"), name+":/kind/images"); err != nil {
			return err
		}
		fmt.Fprintln(o.Log, "  importing the control-plane, CoreDNS, kube-proxy and pause images into the node's containerd")
		return script(ctx, name, setupScript)
	},
		`ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]`,
		"CMD []",
		"ENV container=docker",
		// No STOPSIGNAL (Docker 20.10's commit cannot set it): kind
		// deletes its nodes with `docker rm -f`, never `docker stop`.
	)
}

// setupScript runs inside the build container: systemd as kind's node
// image sets it up, the image files imported into containerd unpacked
// never (the node's snapshotter unpacks them at first use).
const setupScript = `set -o errexit -o nounset -o pipefail
chmod 0755 /usr/local/bin/* /kind/bin/*
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo ReadKMsg=no >>/etc/systemd/journald.conf
systemctl enable kubelet.service containerd.service undo-mount-hacks.service magekube-cni.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests /etc/cni/net.d
containerd >/tmp/containerd.log 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
for f in /kind/images/*.tar; do
  ctr --namespace=k8s.io images import --no-unpack "$f" >/dev/null
done
ctr --namespace=k8s.io images ls -q
kill "$pid"; wait "$pid" || true
rm -rf /kind/images /tmp/containerd.log /var/lib/apt/lists/* /var/cache/apt/*
`

// stageTree lays out every file the node image adds: kind's own node
// files, the project's, the Kubernetes binaries and runc-nocap.
func stageTree(ctx context.Context, o BuildOptions, tree string) error {
	kindDir, err := moduleDir(ctx, o.Repo, "sigs.k8s.io/kind")
	if err != nil {
		return err
	}
	copyFile := func(src, dst string, mode os.FileMode) error {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, mode)
	}
	for _, f := range kindFiles {
		mode := os.FileMode(0o644)
		if strings.Contains(f, "/bin/") {
			mode = 0o755
		}
		if err := copyFile(filepath.Join(kindDir, "images/base/files", f), filepath.Join(tree, f), mode); err != nil {
			return err
		}
	}
	own := filepath.Join(o.Repo, "test/kind/node")
	err = filepath.WalkDir(own, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(own, p)
		return copyFile(p, filepath.Join(tree, rel), info.Mode().Perm())
	})
	if err != nil {
		return err
	}
	for _, b := range []string{"kubelet", "kubeadm", "kubectl"} {
		if err := copyFile(filepath.Join(o.BinDir, b), filepath.Join(tree, "usr/bin", b), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "kind/version"), []byte(KubeVersion+"\n"), 0o644); err != nil {
		return err
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tree, "usr/local/bin/runc-nocap"), "./test/kind/runc-nocap")
	build.Dir, build.Env = o.Repo, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build runc-nocap: %w\n%s", err, b)
	}
	return nil
}

func moduleDir(ctx context.Context, repo, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"Dir": "`); ok {
			return strings.TrimSuffix(v, `",`), nil
		}
	}
	return "", fmt.Errorf("go mod download %s: no Dir in %s", module, out)
}

// docker runs the docker CLI; its error carries the command's output.
func docker(ctx context.Context, stdin io.Reader, args ...string) error {
	return dockerIO(ctx, stdin, nil, args...)
}

// dockerEnv runs the docker CLI with env added to its environment.
func dockerEnv(ctx context.Context, env []string, args ...string) error {
	return dockerIO(ctx, nil, env, args...)
}

func dockerIO(ctx context.Context, stdin io.Reader, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, tail(out.Bytes(), 4000))
	}
	return nil
}

// commitFrom makes the image tag in a container of base, as kind's own
// node-image builder makes its image: runArgs are more `docker run` flags,
// prepare copies files in and runs scripts (it is given the container's
// name), changes are `docker commit --change` instructions.
func commitFrom(ctx context.Context, base, tag string, runArgs []string, prepare func(name string) error, changes ...string) error {
	name := fmt.Sprintf("magekube-build-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", ":", "-").Replace(tag))
	args := append(append([]string{"run", "-d", "--name", name}, runArgs...), "--entrypoint", "sleep", base, "infinity")
	if err := docker(ctx, nil, args...); err != nil {
		return err
	}
	defer docker(context.Background(), nil, "rm", "-f", name) //nolint:errcheck
	if err := prepare(name); err != nil {
		return err
	}
	args = []string{"commit"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	return docker(ctx, nil, append(args, name, tag)...)
}

// script runs a bash script in the container name.
func script(ctx context.Context, name, s string) error {
	return docker(ctx, strings.NewReader(s), "exec", "-i", name, "bash", "-s")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
