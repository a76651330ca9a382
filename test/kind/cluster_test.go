package kind

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kinderrors "sigs.k8s.io/kind/pkg/errors"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	"sigs.k8s.io/yaml"
)

// TestClusterConfig reads hack/kind/cluster.yaml with kind's own types:
// at least two workers, every node mounting the shared project volume at
// the same path, no node pinning an image (the offline node image is
// given at creation), and kind's default network (kindnetd on kindest/node;
// magekube-cni on the offline image).
func TestClusterConfig(t *testing.T) {
	t.Parallel()
	c, err := Config(filepath.Join("..", "..", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	if c.Networking.DisableDefaultCNI {
		t.Error("networking.disableDefaultCNI must stay false: the offline node image brings its own network through kind's CNI manifest, kindest/node brings kindnetd")
	}
	workers := 0
	for i, n := range c.Nodes {
		if n.Image != "" && !strings.HasPrefix(n.Image, "kindest/node:") { // kind's default, replaced at creation
			t.Errorf("node %d pins image %q; the node image is built here and given at creation", i, n.Image)
		}
		if n.Role == v1alpha4.WorkerRole {
			workers++
		}
		if len(n.ExtraMounts) != 1 || n.ExtraMounts[0].HostPath != SharedDir || n.ExtraMounts[0].ContainerPath != SharedDir {
			t.Errorf("node %d must mount %s at the same path: %+v", i, SharedDir, n.ExtraMounts)
		}
	}
	if workers < 2 {
		t.Errorf("want at least two workers for the nodeSelector e2e case, got %d", workers)
	}
}

// TestMagePinsMatchLibSh: the Mage image and the python tier's virtualenv
// install the same mage-ai and Kubernetes client.
func TestMagePinsMatchLibSh(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "hack", "lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"MAGE_AI_VERSION": MageVersion, "MAGE_KUBERNETES_VERSION": MageKubernetesVersion} {
		if !strings.Contains(string(data), "\n"+name+"="+want+"\n") {
			t.Errorf("hack/lib.sh: %s is not %s (test/kind/mageimage.go)", name, want)
		}
	}
}

// TestCommandOutput: a failed image import says what ctr printed, through
// kind's wrapping, so the log names the cause (a full disk, a bad
// archive) instead of an exit status.
func TestCommandOutput(t *testing.T) {
	t.Parallel()
	run := &kindexec.RunError{Command: []string{"ctr", "images", "import"}, Output: []byte("ctr: write /var/lib/containerd/x: no space left on device\n"), Inner: errors.New("exit status 1")}
	err := kinderrors.Wrap(run, "failed to load image")
	if got, want := commandOutput(err), ": ctr: write /var/lib/containerd/x: no space left on device"; got != want {
		t.Errorf("commandOutput = %q, want %q", got, want)
	}
	if got := commandOutput(errors.New("exit status 1")); got != "" {
		t.Errorf("no command output: %q", got)
	}
}

// TestAuditPatches applies the audit patches, with the JSON patch library
// kind applies them with, to the apiServer part of kind's two kubeadm
// templates (v1beta3: extraArgs a map; v1beta4: a list): kind's own
// argument stays, the audit flags and the volume are added, and only
// control-plane nodes mount the audit directory.
func TestAuditPatches(t *testing.T) {
	t.Parallel()
	cfg := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}, {Role: v1alpha4.WorkerRole}}}
	o := Options{AuditDir: t.TempDir(), AuditPolicy: "kind: Policy\n"}
	if err := audit(cfg, o); err != nil {
		t.Fatal(err)
	}
	if m := cfg.Nodes[0].ExtraMounts; len(m) != 1 || m[0].HostPath != o.AuditDir || m[0].ContainerPath != auditMount {
		t.Errorf("control-plane mounts %+v", m)
	}
	if m := cfg.Nodes[1].ExtraMounts; len(m) != 0 {
		t.Errorf("a worker mounts %+v", m)
	}
	templates := map[string]string{
		"v1beta3": `{"apiServer":{"extraArgs":{"runtime-config":""}}}`,
		"v1beta4": `{"apiServer":{"extraArgs":[{"name":"runtime-config","value":""}]}}`,
	}
	if len(cfg.KubeadmConfigPatchesJSON6902) != len(templates) {
		t.Fatalf("%d patches, want one per kubeadm version", len(cfg.KubeadmConfigPatchesJSON6902))
	}
	for _, p := range cfg.KubeadmConfigPatchesJSON6902 {
		ops, err := yaml.YAMLToJSON([]byte(p.Patch))
		if err != nil {
			t.Fatal(err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatalf("%s: %v", p.Version, err)
		}
		out, err := patch.Apply([]byte(templates[p.Version]))
		if err != nil {
			t.Fatalf("%s: %v", p.Version, err)
		}
		for _, want := range []string{"runtime-config", "audit-policy-file", auditMount + "/policy.yaml", "audit-log-path", auditMount + "/audit.log", "audit-log-format", `"json"`, `"hostPath":"` + auditMount} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: %s lacks %s", p.Version, out, want)
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(o.AuditDir, "policy.yaml")); err != nil || string(data) != o.AuditPolicy {
		t.Errorf("policy: %q, %v", data, err)
	}
}
