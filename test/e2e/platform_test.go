//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPlatform proves the cluster: a Job with a hostPath volume runs a
// real container to its real exit code, on the node its nodeSelector
// picks among two.
func TestPlatform(t *testing.T) {
	ns := env.Namespace(t, "platform")
	nodes, err := env.Client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes.Items {
		if len(n.Spec.Taints) == 0 {
			names = append(names, n.Name)
		}
	}
	if len(names) < 2 {
		t.Fatalf("want two schedulable nodes, got %v", names)
	}
	sort.Strings(names)
	target := names[len(names)-1]
	shared := sharedDir(t)
	marker := "platform-" + ns
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "platform"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				NodeSelector:  map[string]string{"kubernetes.io/hostname": target},
				Containers: []corev1.Container{{
					Name: "block", Image: env.ServerImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command:      []string{"/usr/local/bin/block", "--print", "hello from the node", "--write", "/shared/" + marker, "--exit", "3"},
					VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
				}},
				Volumes: []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: shared}}}},
			}},
		},
	}
	if _, err := env.Client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitPodTerminated(t, ns, "job-name=platform")
	if pod.Spec.NodeName != target {
		t.Errorf("pod ran on %s, want %s", pod.Spec.NodeName, target)
	}
	state := pod.Status.ContainerStatuses[0].State.Terminated
	if state.ExitCode != 3 {
		t.Errorf("container exit code %d, want 3", state.ExitCode)
	}
	if _, err := os.Stat(filepath.Join(shared, marker)); err != nil {
		t.Errorf("the container did not write through the hostPath volume: %v", err)
	}
	logs, err := env.Client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(t.Context())
	if err != nil || string(logs) != "hello from the node\n" {
		t.Errorf("kubectl logs: %q, %v", logs, err)
	}
}

// sharedDir is a directory the nodes and this test see at the same path.
func sharedDir(t *testing.T) string {
	t.Helper()
	if env.SharedDir == "" {
		t.Skip("no shared directory (set MAGEKUBE_E2E_SHARED_DIR)")
	}
	return env.SharedDir
}

func waitPodTerminated(t *testing.T, ns, selector string) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) > 0 {
			p := &pods.Items[0]
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				return p
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no terminated pod for %s in %s: %+v", selector, ns, pods)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
