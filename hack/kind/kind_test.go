// Package kind holds the kind cluster used by hack/kind/e2e.sh; its test
// checks the config with kind's own API, since kind cannot run here.
package kind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func TestClusterConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("cluster.yaml does not decode as kind's v1alpha4.Cluster: %v", err)
	}
	v1alpha4.SetDefaultsCluster(&c)
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	var workers int
	for i, n := range c.Nodes {
		if !strings.Contains(n.Image, "kindest/node:v1.34.") || !strings.Contains(n.Image, "@sha256:") {
			t.Errorf("node %d image %q: want a digest-pinned kindest/node v1.34", i, n.Image)
		}
		if n.Role != v1alpha4.WorkerRole {
			continue
		}
		workers++
		if len(n.ExtraMounts) != 1 || n.ExtraMounts[0].HostPath != n.ExtraMounts[0].ContainerPath || !filepath.IsAbs(n.ExtraMounts[0].HostPath) {
			t.Errorf("worker %d must mount the shared directory at the same absolute path: %+v", i, n.ExtraMounts)
		}
	}
	if workers != 2 {
		t.Errorf("want two workers for the nodeSelector e2e case, got %d", workers)
	}
	script, err := os.ReadFile("e2e.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "MAGEKUBE_E2E_SHARED_DIR=$shared") || !strings.Contains(string(script), "shared=/tmp/magekube-kind-shared") ||
		!strings.Contains(string(data), "/tmp/magekube-kind-shared") {
		t.Error("e2e.sh and cluster.yaml must agree on the shared directory")
	}
}
