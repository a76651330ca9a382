package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/images"
	"github.com/magekube/magekube/test/kind"
)

// KindPrefix names the e2e suite's kind clusters: KindPrefix<pid>.
const KindPrefix = "mk-e2e-"

// SetupKind creates the e2e suite's kind cluster (StartKind), named after
// this process, with its own shared directory and kubeconfig. With
// MAGEKUBE_E2E_KUBECONFIG set it uses that cluster instead.
func SetupKind() (*Env, error) {
	if kc := os.Getenv("MAGEKUBE_E2E_KUBECONFIG"); kc != "" {
		return fromKubeconfig(kc)
	}
	if os.Getenv("MAGEKUBE_BIN_DIR") == "" {
		return nil, prerequisite("MAGEKUBE_BIN_DIR is not set (hack/test-e2e.sh sets it from hack/build-bins.sh)")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		return nil, prerequisite("no Docker engine answers (hack/test-e2e.sh starts one with hack/docker.sh)")
	}
	if err := kind.DeleteStale(KindPrefix, os.Stderr); err != nil {
		return nil, err
	}
	unmountStale()
	name := fmt.Sprintf("%s%d", KindPrefix, os.Getpid())
	work, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, err
	}
	shared := filepath.Join(os.TempDir(), "magekube-kind-"+name)
	ownFS := mountShared(shared)
	unmount := func() {
		if ownFS {
			_ = syscall.Unmount(shared, syscall.MNT_DETACH)
			os.Remove(shared)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e, err := StartKind(ctx, KindOptions{Name: name, Work: work, Kubeconfig: filepath.Join(work, "kubeconfig"), SharedDir: shared,
		Audit: os.Getenv("MAGEKUBE_E2E_AUDIT") == "1"})
	if err != nil {
		unmount()
		os.RemoveAll(work)
		return nil, err
	}
	e.SharedFS = ownFS
	stop := e.stop
	e.stop = func() { stop(); unmount(); os.RemoveAll(work) }
	return e, nil
}

// sharedSize bounds the suite's project volume: a tmpfs takes memory only
// for what is written, and the suite writes a few hundred MiB at most.
const sharedSize = "2g"

// mountShared makes dir a tmpfs of its own, so a test can fill the
// project volume without filling the machine's disk. Without the right
// to mount (not root), dir stays a plain directory and those tests skip.
func mountShared(dir string) bool {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return false
	}
	if err := syscall.Mount("magekube-shared", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+sharedSize+",mode=0777"); err != nil {
		fmt.Fprintf(os.Stderr, "the project volume is a plain directory (mount a tmpfs at %s: %v): the full-volume test skips\n", dir, err)
		return false
	}
	return true
}

// unmountStale unmounts the project volumes of suites whose process is
// gone (killed before their teardown); DeleteStale deletes their clusters.
func unmountStale() {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	prefix := filepath.Join(os.TempDir(), "magekube-kind-"+KindPrefix)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], prefix) {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimPrefix(f[1], prefix)); err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		if syscall.Unmount(f[1], syscall.MNT_DETACH) == nil {
			fmt.Fprintf(os.Stderr, "unmounted %s, left by a suite that is gone\n", f[1])
			os.RemoveAll(f[1])
		}
	}
}

// KindOptions name a kind cluster and where its files go.
type KindOptions struct {
	Name       string
	Work       string // image archives; removed by the caller
	Kubeconfig string // "": kind's default (KUBECONFIG or ~/.kube/config)
	SharedDir  string // the project volume every node mounts
	// Audit: the API server writes an audit log (Env.AuditLog), for the
	// bench's request counts.
	Audit bool
}

// StartKind builds every image the cluster runs (the node image, the real
// Mage server and its PostgreSQL, the agent and runner from their Dockerfiles, Jaeger, the
// test images; each cached by version or content), creates the cluster
// from hack/kind/cluster.yaml through kind's Go API, and loads the images.
// The Env's Teardown deletes the cluster and the shared directory.
func StartKind(ctx context.Context, o KindOptions) (*Env, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	binDir := os.Getenv("MAGEKUBE_BIN_DIR")
	build := kind.BuildOptions{Repo: repo, BinDir: binDir, Cache: kind.DefaultCache(), Log: os.Stderr}
	nodeImage, err := kind.NodeImage(ctx, build)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Work, "images")
	archives, err := kindImages(ctx, build, dir)
	if err != nil {
		return nil, err
	}
	mage, err := kind.MageImage(ctx, build)
	if err != nil {
		return nil, err
	}
	postgres, err := kind.PostgresImage(ctx, build)
	if err != nil {
		return nil, err
	}
	saved, err := saveImages(ctx, dir, mage, postgres)
	if err != nil {
		return nil, err
	}
	jaeger := "magekube/jaeger:" + strings.TrimPrefix(filepath.Base(filepath.Dir(mustResolve(filepath.Join(binDir, "jaeger")))), "bin-jaeger-")
	jaegerArchive := filepath.Join(dir, "jaeger.tar")
	if err := images.WriteComponent(jaegerArchive, jaeger, filepath.Join(binDir, "jaeger"), "jaeger", []string{"/usr/local/bin/jaeger"}, ""); err != nil {
		return nil, err
	}
	archives = append(append(archives, saved...), jaegerArchive)
	ko := kind.Options{Name: o.Name, ConfigPath: filepath.Join(repo, kind.ConfigFile), SharedDir: o.SharedDir,
		NodeImage: nodeImage, Kubeconfig: o.Kubeconfig, Log: os.Stderr}
	if o.Audit {
		ko.AuditDir, ko.AuditPolicy = filepath.Join(o.Work, "audit"), cluster.AuditPolicy
	}
	c, err := kind.Create(ctx, ko)
	if err != nil {
		os.RemoveAll(o.SharedDir)
		return nil, err
	}
	stop := func() {
		if dir := os.Getenv("MAGEKUBE_KIND_LOGS"); dir != "" {
			_ = c.CollectLogs(dir)
		}
		if err := c.Delete(); err != nil {
			fmt.Fprintln(os.Stderr, "delete kind cluster:", err)
		}
		os.RemoveAll(o.SharedDir)
	}
	start := time.Now()
	if err := c.LoadImages(archives...); err != nil {
		stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "loaded %d images into the workers in %s\n", len(archives), time.Since(start).Round(time.Second))
	kubeconfig := o.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = defaultKubeconfig()
	}
	e, err := fromKubeconfig(kubeconfig)
	if err != nil {
		stop()
		return nil, err
	}
	e.SharedDir, e.AgentImage, e.ServerImage, e.stop = o.SharedDir, kind.AgentImage, images.Server, stop
	e.MageImage, e.PostgresImage, e.JaegerImage, e.BinDir = mage, postgres, jaeger, binDir
	if o.Audit {
		e.AuditLog = ko.AuditLog()
	}
	return e, nil
}

// defaultKubeconfig is where kind writes without an explicit path.
func defaultKubeconfig() string {
	if kc := os.Getenv("KUBECONFIG"); kc != "" {
		return filepath.SplitList(kc)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// kindImages writes the archives the kind nodes load: the agent and runner
// images built by Docker from the Dockerfiles, and the test image (the
// block program Jobs run) written by test/images.
func kindImages(ctx context.Context, o kind.BuildOptions, dir string) ([]string, error) {
	if err := kind.ProjectImages(ctx, o, "dev"); err != nil {
		return nil, err
	}
	built, err := images.Build(ctx, o.Repo, dir)
	if err != nil {
		return nil, err
	}
	saved, err := saveImages(ctx, dir, kind.AgentImage, kind.RunnerImage)
	return append(built, saved...), err
}

// saveImages writes Docker images as docker-archive tarballs into dir.
func saveImages(ctx context.Context, dir string, tags ...string) ([]string, error) {
	var out []string
	for _, tag := range tags {
		p := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".docker.tar")
		if err := kind.SaveImage(ctx, tag, p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
