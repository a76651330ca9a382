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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// TestDeployManifests deploys deploy/manifests/examples/mage-stack as a
// user would, with the changes an offline cluster needs (a hostPath for
// the RWX claim, the test images, no Jaeger image), and runs a block
// through the agent sidecar, which works with exactly the RBAC the
// manifests grant and the only Kubernetes token in the pod.
func TestDeployManifests(t *testing.T) {
	ns := env.Namespace(t, "deploy")
	shared := filepath.Join(sharedDir(t), ns)
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	built, err := framework.BuildStack("../../" + framework.ExampleStack)
	if err != nil {
		t.Fatal(err)
	}
	opts := framework.StackOptions{Namespace: ns, SharedDir: shared, ServerImage: env.ServerImage, AgentImage: env.AgentImage}
	if env.Cluster != nil {
		opts.APIServer = env.Cluster.Server // no kube-proxy offline
	}
	objs, err := framework.OfflineStack(built, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.Apply(t.Context(), cfg, objs); err != nil {
		t.Fatal(err)
	}

	// The server pod: Ready means the agent passed its preflight with the
	// Role's permissions and synced its informers.
	var pod corev1.Pod
	waitFor(t, 2*time.Minute, "the Mage pod with the agent to be Ready", func() bool {
		pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=mage"})
		if err != nil || len(pods.Items) != 1 {
			return false
		}
		pod = pods.Items[0]
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}, func() string { return podDiagnostics(t, ns) })

	// The token split: only the agent container mounts a token.
	for _, c := range pod.Spec.Containers {
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || strings.HasPrefix(m.MountPath, "/var/run/secrets/kubernetes.io")
		}
		if mounted != (c.Name == "magekube-agent") {
			t.Errorf("container %s: token mounted = %v", c.Name, mounted)
		}
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("pod automounts a service account token")
	}

	layout := protocol.Layout{Root: filepath.Join(shared, ".magekube")}
	req := `{"apiVersion":"magekube/v1","id":"deployed-1","kind":"block","project_dir":"/home/src/none","pipeline_uuid":"etl","block_uuid":"load","block_run_id":1,
	  "command":["/usr/local/bin/block","--print","ran through the deployed agent"]}`
	if _, err := protocol.Submit(layout, []byte(req)); err != nil {
		t.Fatal(err)
	}
	s := waitRun(t, layout, "deployed-1", func(s protocol.Status) bool { return s.Phase.Terminal() })
	if s.Phase != protocol.PhaseSucceeded || s.ExitCode == nil || *s.ExitCode != 0 {
		t.Errorf("run through the deployed agent: %+v\n%s", s, podDiagnostics(t, ns))
	}
	log, _ := os.ReadFile(layout.RunFile("deployed-1", protocol.LogFile))
	if !strings.Contains(string(log), "ran through the deployed agent") {
		t.Errorf("run log: %q", log)
	}
	// Its Job carries the agent's Events (events create is in the Role).
	waitFor(t, time.Minute, "a Dispatched event on the Job", func() bool {
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=Dispatched"})
		return err == nil && len(evs.Items) > 0
	}, func() string { return "" })
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, diag())
		}
		time.Sleep(200 * time.Millisecond)
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
