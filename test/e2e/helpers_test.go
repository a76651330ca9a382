//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magekube/magekube/test/framework"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// waitFor polls ok every 200 ms until it holds, or fails with diag.
func waitFor(t *testing.T, within time.Duration, what string, ok func() bool, diag func() string) {
	t.Helper()
	if err := framework.Poll(within, 200*time.Millisecond, ok); err != nil {
		t.Fatalf("timed out waiting for %s\n%s", what, diag())
	}
}

// podDiagnostics is what a failing deploy test shows: pod states and the
// agent's log.
func podDiagnostics(t *testing.T, ns string) string {
	var b strings.Builder
	pods, err := env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s\n", p.Name, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  %s ready=%v restarts=%d state=%+v last=%+v\n", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
		}
		if strings.HasPrefix(p.Name, "mage-") {
			previous := false
			for _, cs := range p.Status.ContainerStatuses {
				previous = previous || (cs.Name == "magekube-agent" && cs.RestartCount > 0 && cs.State.Running == nil)
			}
			logs, err := env.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: "magekube-agent", Previous: previous}).DoRaw(context.Background())
			fmt.Fprintf(&b, "  agent log (%v):\n%s\n", err, logs)
		}
	}
	return b.String()
}

// projectVolume is the namespace's project directory on the shared volume
// (writable by every pod's user); the hostPath PersistentVolume the test
// makes on it (framework.ProjectPV) is deleted when the test ends.
func projectVolume(t *testing.T, ns string) string {
	t.Helper()
	shared := filepath.Join(sharedDir(t), ns)
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.CoreV1().PersistentVolumes().Delete(context.Background(), ns+"-mage-fs", metav1.DeleteOptions{})
	})
	return shared
}
