//go:build e2e

package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// serverPod is the Mage server pod as the agent would read it: a Mage
// container and the agent sidecar sharing the project volume.
func serverPod(ns, shared string) *corev1.Pod {
	return framework.ServerPod(framework.PodOptions{
		Namespace: ns, MageImage: env.ServerImage, AgentImage: env.AgentImage, Shared: shared,
		Env: []corev1.EnvVar{{Name: "MAGE_CLUSTER_UUID", Value: "e2e"}, {Name: "BLOCK_BEHAVIOUR", Value: "--print inherited-env-works --exit 0"}},
	})
}

// TestRunnerInJob builds Jobs the way the agent does and runs them on the
// nodes: the init container installs the runner from the agent image, the
// runner runs Mage's command (and a request's own command) and writes the
// result, log and span to the shared volume.
func TestRunnerInJob(t *testing.T) {
	ns := env.Namespace(t, "runner")
	shared := sharedDir(t)
	pod := serverPod(ns, shared)
	project := fstest.MapFS{"metadata.yaml": {Data: []byte("k8s_executor_config:\n  job_name_prefix: e2e\n  resource_limits: {memory: 128Mi}\n")}}
	b := jobspec.Builder{
		Settings:  jobspec.Settings{AgentContainer: "magekube-agent", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		ProjectFS: func(string) fs.FS { return project },
	}
	for _, tc := range []struct {
		id      string
		command []string
		code    int
		log     string
	}{
		{id: ns + "-mage", code: 0, log: "mage stand-in: mage run /home/src/p etl --block-uuid load"},
		{id: ns + "-own", command: []string{"/usr/local/bin/block", "--print", "own command", "--exit", "7"}, code: 7, log: "own command"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			req := &protocol.Request{APIVersion: protocol.APIVersion, ID: tc.id, Kind: protocol.KindBlock, ProjectDir: "/home/src/p",
				PipelineUUID: "etl", BlockUUID: "load", BlockRunID: int64(len(tc.command) + 1), Command: tc.command}
			job, err := b.Build(pod, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			p := waitPodTerminated(t, ns, jobspec.LabelRun+"="+tc.id)
			if got := p.Status.ContainerStatuses[0].State.Terminated.ExitCode; got != int32(tc.code) {
				t.Errorf("container exit code %d, want %d", got, tc.code)
			}
			runDir := filepath.Join(shared, ".magekube", "runs", tc.id)
			var res protocol.Result
			if err := protocol.ReadJSON(filepath.Join(runDir, protocol.ResultFile), &res); err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tc.code || res.Pod != p.Name || res.Attempt != 1 || res.TraceID != "0af7651916cd43dd8448eb211c80319c" {
				t.Errorf("result %+v", res)
			}
			log, _ := os.ReadFile(filepath.Join(runDir, protocol.LogFile))
			if !strings.Contains(string(log), tc.log) {
				t.Errorf("log %q lacks %q", log, tc.log)
			}
			if tc.command == nil && !strings.Contains(string(log), "inherited-env-works") {
				t.Errorf("the Mage container's env was not inherited: log %q", log)
			}
			if _, err := os.Stat(filepath.Join(runDir, protocol.SpansDir, "runner-exec-1.json")); err != nil {
				t.Errorf("span file: %v", err)
			}
		})
	}
}
