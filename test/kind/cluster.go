// Package kind runs the e2e suite's and the demo's clusters on kind,
// through kind's Go API (sigs.k8s.io/kind/pkg/cluster), on a node image
// built here (NodeImage): nothing is pulled.
package kind

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	kindlog "sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

// ConfigFile is the cluster's config, relative to the module root.
const ConfigFile = "hack/kind/cluster.yaml"

// SharedDir is the host directory every node mounts at the same path
// (cluster.yaml): the project volume shared by the Mage pod and its Jobs.
const SharedDir = "/tmp/magekube-kind-shared"

// Cluster is a kind cluster this process created or found.
type Cluster struct {
	Name       string
	Kubeconfig string
	provider   *cluster.Provider
}

// Config reads the cluster config at path with kind's own types, strictly.
func Config(path string) (*v1alpha4.Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v1alpha4.SetDefaultsCluster(&c)
	return &c, nil
}

func provider(log io.Writer) *cluster.Provider {
	return cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(logger{log}))
}

// Options say which cluster Create makes.
type Options struct {
	Name       string
	ConfigPath string // kind's v1alpha4 config (ConfigFile)
	// SharedDir, when set, replaces the config's SharedDir mounts, so two
	// clusters (the demo's, a test's) never share a project volume.
	SharedDir  string
	NodeImage  string
	Kubeconfig string // written by kind
	Log        io.Writer
	// AuditDir, when set, is a host directory the control-plane node
	// mounts: the API server writes its audit log there (AuditLog), as JSON
	// lines, under AuditPolicy.
	AuditDir    string
	AuditPolicy string
}

// auditMount is where a node sees Options.AuditDir.
const auditMount = "/var/log/magekube-audit"

// AuditLog is the API server's audit log in o.AuditDir.
func (o Options) AuditLog() string { return filepath.Join(o.AuditDir, "audit.log") }

// audit makes cfg's control-plane nodes' API servers write an audit log
// into o.AuditDir: the node mounts it, and kubeadm gives the API server
// the flags and the hostPath volume (JSON 6902 patches: kind's own
// extraArgs stay).
func audit(cfg *v1alpha4.Cluster, o Options) error {
	if err := os.MkdirAll(o.AuditDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.AuditDir, "policy.yaml"), []byte(o.AuditPolicy), 0o644); err != nil {
		return err
	}
	for i := range cfg.Nodes {
		if cfg.Nodes[i].Role == v1alpha4.ControlPlaneRole {
			cfg.Nodes[i].ExtraMounts = append(cfg.Nodes[i].ExtraMounts, v1alpha4.Mount{HostPath: o.AuditDir, ContainerPath: auditMount})
		}
	}
	// kubeadm's v1beta3 (kind's for Kubernetes before 1.36) has extraArgs
	// as a map, v1beta4 as a list; each patch applies to its version only.
	args := [][2]string{{"audit-policy-file", auditMount + "/policy.yaml"}, {"audit-log-path", auditMount + "/audit.log"},
		{"audit-log-format", "json"}, {"audit-log-maxsize", "0"}}
	volume := fmt.Sprintf("- op: add\n  path: /apiServer/extraVolumes\n  value: [{name: magekube-audit, hostPath: %s, mountPath: %s, pathType: Directory}]\n", auditMount, auditMount)
	beta3, beta4 := volume, volume
	for _, a := range args {
		beta3 += fmt.Sprintf("- op: add\n  path: /apiServer/extraArgs/%s\n  value: %q\n", a[0], a[1])
		beta4 += fmt.Sprintf("- op: add\n  path: /apiServer/extraArgs/-\n  value: {name: %s, value: %q}\n", a[0], a[1])
	}
	for version, patch := range map[string]string{"v1beta3": beta3, "v1beta4": beta4} {
		cfg.KubeadmConfigPatchesJSON6902 = append(cfg.KubeadmConfigPatchesJSON6902, v1alpha4.PatchJSON6902{
			Group: "kubeadm.k8s.io", Version: version, Kind: "ClusterConfiguration", Patch: patch,
		})
	}
	return nil
}

// Create creates the cluster o names and waits for its nodes to be Ready.
// A cluster of that name left by an earlier run is deleted first.
func Create(ctx context.Context, o Options) (*Cluster, error) {
	name, log := o.Name, o.Log
	cfg, err := Config(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		for j := range cfg.Nodes[i].ExtraMounts {
			m := &cfg.Nodes[i].ExtraMounts[j]
			if o.SharedDir != "" && m.ContainerPath == SharedDir {
				m.HostPath, m.ContainerPath = o.SharedDir, o.SharedDir
			}
			if err := os.MkdirAll(m.HostPath, 0o777); err != nil {
				return nil, err
			}
			if err := os.Chmod(m.HostPath, 0o777); err != nil {
				return nil, err
			}
		}
	}
	if o.AuditDir != "" {
		if err := audit(cfg, o); err != nil {
			return nil, err
		}
	}
	p := provider(log)
	if err := deleteIfPresent(p, name); err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Kubeconfig: o.Kubeconfig, provider: p}
	start := time.Now()
	fmt.Fprintf(log, "creating kind cluster %s (%d nodes, image %s; about 2 min)\n", name, len(cfg.Nodes), o.NodeImage)
	err = p.Create(name,
		cluster.CreateWithV1Alpha4Config(cfg),
		cluster.CreateWithNodeImage(o.NodeImage),
		cluster.CreateWithKubeconfigPath(o.Kubeconfig),
		cluster.CreateWithWaitForReady(4*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false))
	if err != nil {
		_ = p.Delete(name, o.Kubeconfig)
		return nil, fmt.Errorf("kind create cluster %s: %w", name, err)
	}
	fmt.Fprintf(log, "created kind cluster %s in %s\n", name, time.Since(start).Round(time.Second))
	return c, ctx.Err()
}

func deleteIfPresent(p *cluster.Provider, name string) error {
	names, err := p.List()
	if err != nil {
		return fmt.Errorf("kind: list clusters: %w", err)
	}
	for _, n := range names {
		if n == name {
			return p.Delete(name, "")
		}
	}
	return nil
}

// Delete deletes cluster name and the kubeconfig entry it wrote; it is
// not an error when the cluster is already gone.
func Delete(name, kubeconfig string, log io.Writer) error {
	p := provider(log)
	names, err := p.List()
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return p.Delete(name, kubeconfig)
		}
	}
	return nil
}

// Delete deletes c.
func (c *Cluster) Delete() error { return c.provider.Delete(c.Name, c.Kubeconfig) }

// DeleteStale deletes the clusters named prefix<pid> whose process is
// gone: what a killed test run left behind.
func DeleteStale(prefix string, log io.Writer) error {
	p := provider(log)
	names, err := p.List()
	if err != nil {
		return err
	}
	for _, n := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(n, prefix))
		if !strings.HasPrefix(n, prefix) || err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		fmt.Fprintf(log, "deleting kind cluster %s, left by process %d\n", n, pid)
		if err := p.Delete(n, ""); err != nil {
			return err
		}
	}
	return nil
}

// LoadImages imports docker-archive tarballs into the containerd of every
// node that runs workloads (the workers; the control plane too when it is
// the only node), as `kind load image-archive` does.
func (c *Cluster) LoadImages(archives ...string) error {
	all, err := c.provider.ListInternalNodes(c.Name)
	if err != nil {
		return err
	}
	nodes, err := nodeutils.SelectNodesByRole(all, "worker")
	if err != nil || len(nodes) == 0 {
		nodes = all
	}
	// One node at a time would double the wait: the nodes import in
	// parallel, each reading the archives itself.
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			for _, a := range archives {
				f, err := os.Open(a)
				if err != nil {
					errs <- err
					return
				}
				err = nodeutils.LoadImageArchive(n, f)
				f.Close()
				if err != nil {
					errs <- fmt.Errorf("load %s into %s: %w%s", filepath.Base(a), n.String(), err, commandOutput(err))
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range nodes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// commandOutput is what a failed node command printed (for ctr, why an
// import failed: a full disk, a bad archive), for its error message.
func commandOutput(err error) string {
	if re := kindexec.RunErrorForError(err); re != nil && len(bytes.TrimSpace(re.Output)) > 0 {
		return ": " + string(bytes.TrimSpace(re.Output))
	}
	return ""
}

// SaveImage writes the Docker image tag as a docker-archive tarball at
// path, for LoadImages.
func SaveImage(ctx context.Context, tag, path string) error {
	return docker(ctx, nil, "save", "-o", path, tag)
}

// CollectLogs writes every node's logs (journal, containers, pods) to dir.
func (c *Cluster) CollectLogs(dir string) error { return c.provider.CollectLogs(c.Name, dir) }

// logger prints kind's messages, warnings and errors; its verbose log is
// dropped.
type logger struct{ w io.Writer }

func (l logger) Warn(message string)                       { fmt.Fprintln(l.w, "kind:", message) }
func (l logger) Warnf(format string, args ...interface{})  { l.Warn(fmt.Sprintf(format, args...)) }
func (l logger) Error(message string)                      { fmt.Fprintln(l.w, "kind: error:", message) }
func (l logger) Errorf(format string, args ...interface{}) { l.Error(fmt.Sprintf(format, args...)) }
func (l logger) V(level kindlog.Level) kindlog.InfoLogger {
	if level > 0 {
		return discard{}
	}
	return info(l)
}

type info logger

func (i info) Info(message string) {
	if m := strings.TrimSpace(message); m != "" {
		fmt.Fprintln(i.w, "kind:", m)
	}
}
func (i info) Infof(format string, args ...interface{}) { i.Info(fmt.Sprintf(format, args...)) }
func (i info) Enabled() bool                            { return true }

type discard struct{}

func (discard) Info(string)                  {}
func (discard) Infof(string, ...interface{}) {}
func (discard) Enabled() bool                { return false }
