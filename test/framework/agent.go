package framework

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
)

// What the integration, e2e and bench suites share to run the agent in
// their own process: the server pod it inherits from, a project, its
// options, starting it, requests, and waiting for statuses. Each helper
// returns an error; the suites fail or stop on it their own way.

// Container names of the server pod.
const (
	MageContainer  = "mage"
	AgentContainer = "magekube-agent"
)

// PodOptions describe a Mage server pod.
type PodOptions struct {
	Name, Namespace string
	// MageImage and AgentImage default to images no node has: the
	// control-plane suites never run a container.
	MageImage, AgentImage string
	// Env is the Mage container's.
	Env []corev1.EnvVar
	// Shared, when set, is mounted as the project volume at /home/src in
	// both containers (a hostPath every node has).
	Shared string
	// OnFakeNodes lets the pod's Jobs (which inherit its tolerations) run
	// on the kwok nodes.
	OnFakeNodes bool
}

// ServerPod is the Mage server pod as the agent reads it: a Mage
// container and the agent sidecar.
func ServerPod(o PodOptions) *corev1.Pod {
	if o.Name == "" {
		o.Name = "mage-server"
	}
	mage := corev1.Container{Name: MageContainer, Image: firstOf(o.MageImage, "mage:test"), ImagePullPolicy: corev1.PullIfNotPresent, Env: o.Env}
	agent := corev1.Container{Name: AgentContainer, Image: firstOf(o.AgentImage, "magekube/agent:test"), ImagePullPolicy: corev1.PullIfNotPresent}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace}}
	if o.Shared != "" {
		mount := []corev1.VolumeMount{{Name: "mage-fs", MountPath: "/home/src"}}
		mage.VolumeMounts, agent.VolumeMounts = mount, mount
		pod.Spec.Volumes = []corev1.Volume{{Name: "mage-fs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: o.Shared}}}}
	}
	pod.Spec.Containers = []corev1.Container{mage, agent}
	if o.OnFakeNodes {
		pod.Spec.Tolerations = []corev1.Toleration{cluster.FakeNodeToleration()}
	}
	return pod
}

// CreateServerPod creates the server pod and returns it as the API
// server has it.
func CreateServerPod(ctx context.Context, c kubernetes.Interface, o PodOptions) (*corev1.Pod, error) {
	return c.CoreV1().Pods(o.Namespace).Create(ctx, ServerPod(o), metav1.CreateOptions{})
}

// Project makes a Mage project in dir whose metadata.yaml is metadata.
func Project(dir, metadata string) error {
	return os.WriteFile(filepath.Join(dir, "metadata.yaml"), []byte(metadata), 0o644)
}

// AgentOptions are the engine's options for an agent of the server pod
// whose requests all read the project in projectDir; instance labels its
// Jobs (one per test, so agents of parallel tests never see each other's).
func AgentOptions(l protocol.Layout, c kubernetes.Interface, pod *corev1.Pod, projectDir, instance string) dispatch.Options {
	return dispatch.Options{
		Layout: l, Client: c, Pod: pod, Rescan: 2 * time.Second,
		Builder: jobspec.Builder{
			Settings:  jobspec.Settings{AgentContainer: AgentContainer, Instance: instance},
			ProjectFS: func(string) fs.FS { return os.DirFS(projectDir) },
			Configs:   execconfig.NewCache(),
		},
		Log: slog.New(slog.DiscardHandler),
	}
}

// StartAgent runs an agent in this process until stop, and waits until
// it is ready. stop returns what Run returned.
func StartAgent(o dispatch.Options, within time.Duration) (stop func() error, err error) {
	a, err := dispatch.New(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	deadline := time.Now().Add(within)
	for !a.Ready() {
		select {
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("agent stopped before it was ready: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, fmt.Errorf("agent not ready after %s", within)
		}
	}
	return stop, nil
}

// Request is a block run request for the pipeline etl; extra is added
// to its JSON object as is (`,"executor_config":{…}`).
func Request(id, block string, blockRunID int, extra string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":%q,"block_run_id":%d%s}`,
		id, block, blockRunID, extra)
}

// Phase matches a status in phase p and, unless reason is "", with that
// reason.
func Phase(p protocol.Phase, reason string) func(protocol.Status) bool {
	return func(s protocol.Status) bool { return s.Phase == p && (reason == "" || s.Reason == reason) }
}

// Terminal matches a status that ended.
func Terminal(s protocol.Status) bool { return s.Phase.Terminal() }

// WaitStatus polls the run's status until ok holds, at most within.
func WaitStatus(l protocol.Layout, id string, within time.Duration, ok func(protocol.Status) bool) (protocol.Status, error) {
	deadline := time.Now().Add(within)
	for {
		s, err := protocol.ReadStatus(l, id)
		if err == nil && ok(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("run %s: status %+v (%v) did not match within %s", id, s, err, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitAll waits until every run's status satisfies ok, at most within.
func WaitAll(l protocol.Layout, ids []string, within time.Duration, ok func(protocol.Status) bool) error {
	deadline := time.Now().Add(within)
	for {
		pending := 0
		var last protocol.Status
		for _, id := range ids {
			if s, err := protocol.ReadStatus(l, id); err != nil || !ok(s) {
				pending++
				last = s
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d runs not there after %s; one of them: %+v", pending, len(ids), within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Poll calls ok every interval until it holds, at most within.
func Poll(within, interval time.Duration, ok func() bool) error {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(interval)
	}
	return nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
