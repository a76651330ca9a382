package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRunnerLinksNoHeavyPackages keeps the runner small and quick to
// start: it runs in every Job, and each package's init adds to every
// block's wall time (the agent's exporter, metrics and Kubernetes client
// once added 11 ms and 8 MiB).
func TestRunnerLinksNoHeavyPackages(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-tags", "urfave_cli_no_docs", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/prometheus/", "google.golang.org/grpc", "go.opentelemetry.io/", "k8s.io/", "net/http"} {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("the runner links %s", dep)
			}
		}
	}
}
