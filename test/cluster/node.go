package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The nodes' network: a host bridge with the API server's address and one
// network namespace per node, joined to it by a veth pair. Each cluster
// with real nodes takes a free network slot k (bridge mkbr<k>, subnet
// 10.200.<k>.0/24, namespaces, veths and cgroups named with k), so a test
// suite and the demo run side by side.
const (
	bridgePrefix = "mkbr"
	// maxNets is how many clusters with real nodes can run at once.
	maxNets = 8
	// PauseImage is the sandbox image every node's containerd uses.
	PauseImage = "registry.k8s.io/pause:3.10"
	cgroupBase = "magekube"
)

func bridgeName(k int) string   { return bridgePrefix + itoa(k) }
func bridgeIP(k int) string     { return "10.200." + itoa(k) + ".1" }
func nodeName(i int) string     { return "node-" + itoa(i) }
func nodeToken(i int) string    { return "magekube-node-token-" + itoa(i) }
func nodeIP(k, i int) string    { return "10.200." + itoa(k) + "." + itoa(10+i) }
func netnsName(k, i int) string { return "mk" + itoa(k) + "-" + nodeName(i) }

// nodeState records what one node created, for teardown.
type nodeState struct {
	Name    string `json:"name"`
	Netns   string `json:"netns"`
	Veth    string `json:"veth"`
	RootDir string `json:"rootDir"`
	Cgroup  string `json:"cgroup"`
	Socket  string `json:"socket"`
}

func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// createBridge takes the first free network slot: its bridge is created
// atomically by the kernel, so two starting clusters never share one.
func (c *Cluster) createBridge() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	for k := range maxNets {
		name := bridgeName(k)
		if _, err := net.InterfaceByName(name); err == nil {
			continue // another cluster's
		}
		if run("ip", "link", "add", name, "type", "bridge") != nil {
			continue // taken meanwhile
		}
		c.net, c.state.Bridge, c.state.Net = k, name, k
		if err := c.save(); err != nil {
			return err
		}
		for _, argv := range [][]string{
			{"ip", "addr", "add", bridgeIP(k) + "/24", "dev", name},
			{"ip", "link", "set", name, "up"},
		} {
			if err := run(argv...); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("all %d network slots are taken (bridges %s0-%d): stop a cluster with make cluster-down", maxNets, bridgePrefix, maxNets-1)
}

func (c *Cluster) startNode(ctx context.Context, o Options, i int) error {
	name := nodeName(i)
	dir := c.dir(name)
	k := c.net
	n := &nodeState{Name: name, Netns: netnsName(k, i), Veth: "mk" + itoa(k) + "n" + itoa(i) + "h", RootDir: dir,
		Cgroup: cgroupBase + "-" + itoa(k) + "-" + name, Socket: filepath.Join(dir, "containerd", "containerd.sock")}
	c.state.Nodes = append(c.state.Nodes, n)
	if err := c.save(); err != nil {
		return err
	}
	for _, d := range []string{"containerd", "cni", "ipam", "kubelet", "pki"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := n.network(k, i); err != nil {
		return err
	}
	if err := n.cgroups(); err != nil {
		return err
	}
	if err := n.writeConfigs(c, i); err != nil {
		return err
	}
	ctrd, err := startProc(c.dir("logs"), name+"-containerd", n.Netns, []string{"containerd", "--config", filepath.Join(dir, "containerd.toml")}, nil)
	if err != nil {
		return err
	}
	if err := c.track(ctrd); err != nil {
		return err
	}
	if err := waitFile(ctx, n.Socket, ctrd, 30*time.Second); err != nil {
		return err
	}
	for _, img := range o.Images {
		if err := run("ctr", "--address", n.Socket, "-n", "k8s.io", "images", "import", "--no-unpack", img); err != nil {
			return err
		}
	}
	kubelet, err := startProc(c.dir("logs"), name+"-kubelet", n.Netns, []string{
		filepath.Join(o.BinDir, "kubelet"),
		"--config=" + filepath.Join(dir, "kubelet.yaml"),
		"--kubeconfig=" + filepath.Join(dir, "kubelet.kubeconfig"),
		"--hostname-override=" + name,
		"--node-ip=" + nodeIP(k, i),
		"--root-dir=" + filepath.Join(dir, "kubelet"),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--node-labels=magekube.io/test-node=" + name,
	}, nil)
	if err != nil {
		return err
	}
	return c.track(kubelet)
}

func (n *nodeState) network(k, i int) error {
	peer := "mk" + itoa(k) + "n" + itoa(i) + "n"
	ns := "--net=/var/run/netns/" + n.Netns
	for _, argv := range [][]string{
		{"ip", "netns", "add", n.Netns},
		{"ip", "link", "add", n.Veth, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", n.Veth, "master", bridgeName(k)},
		{"ip", "link", "set", n.Veth, "up"},
		{"ip", "link", "set", peer, "netns", n.Netns},
		{"nsenter", ns, "ip", "addr", "add", nodeIP(k, i) + "/24", "dev", peer},
		{"nsenter", ns, "ip", "link", "set", peer, "up"},
		{"nsenter", ns, "ip", "link", "set", "lo", "up"},
	} {
		if err := run(argv...); err != nil {
			return err
		}
	}
	return nil
}

// cgroups gives the node its own cgroup root in every v1 hierarchy, so
// two kubelets on one machine never manage each other's pods.
func (n *nodeState) cgroups() error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		if filepath.Base(h) == "unified" {
			continue
		}
		d := filepath.Join(h, n.Cgroup)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (n *nodeState) writeConfigs(c *Cluster, i int) error {
	dir := n.RootDir
	ca := c.dir("pki", "ca.crt")
	cni := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "magekube-pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isDefaultGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.%d.0/24"}]], "dataDir": %q}},
  {"type": "loopback"}]}
`, i, filepath.Join(dir, "ipam"))
	containerd := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"), n.Socket, PauseImage, filepath.Join(dir, "cni"))
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /%s
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: ""
serializeImagePulls: false
maxPods: 200
# Each node its own pod log directory: the nodes share one filesystem,
# and a kubelet removes the log directories of pods it does not run.
podLogsDir: %q
`, n.Cgroup, n.Socket, nodeIP(c.net, i), ca, filepath.Join(dir, "pod-logs"))
	for name, content := range map[string]string{
		"cni/10-magekube.conflist": cni, "containerd.toml": containerd, "kubelet.yaml": kubelet,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	p := &pki{dir: c.dir("pki")}
	return c.writeKubeconfig(p, filepath.Join(n.Name, "kubelet.kubeconfig"), nodeToken(i))
}

func waitFile(ctx context.Context, path string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not create %s:\n%s", p.Name, path, tail(p.Log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untainted: no taint but the fake nodes' own (real nodes register with
// a not-ready taint that the node lifecycle controller lifts).
func untainted(node corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key != FakeNodeLabel {
			return false
		}
	}
	return true
}

// waitNodesReady waits until n nodes report Ready.
func (c *Cluster) waitNodesReady(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	client, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ready := 0
		if err == nil {
			for _, node := range nodes.Items {
				for _, cond := range node.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && untainted(node) {
						ready++
					}
				}
			}
		}
		if ready == n {
			return nil
		}
		for _, p := range c.state.Procs {
			if p.cmd != nil && p.cmd.ProcessState != nil {
				return fmt.Errorf("%s exited:\n%s", p.Name, tail(p.Log))
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d nodes ready after 3m (logs in %s)", ready, n, c.dir("logs"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitDefaultServiceAccount waits for the controller manager to create
// the default service account, which pods need before they are admitted.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no default service account after 60s:\n%s", tail(c.dir("logs", "kube-controller-manager.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
