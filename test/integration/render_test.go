//go:build integration

package integration

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/fixtures"
)

const seedDir = "../../pkg/jobspec/testdata"

func readPod(t *testing.T) *corev1.Pod { return fixtures.Pod(t, filepath.Join(seedDir, "pod.yaml")) }

func readRequest(t *testing.T, path string) *protocol.Request { return fixtures.Request(t, path) }

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestSeedJobsPassServerSideDryRun sends the Job built for every example
// of Mage's executor documentation to the API server with dryRun=All:
// full validation and admission, nothing stored.
func TestSeedJobsPassServerSideDryRun(t *testing.T) {
	pod := readPod(t)
	cases, _ := filepath.Glob(filepath.Join(seedDir, "seed", "*"))
	if len(cases) < 8 {
		t.Fatalf("want the 8 seed examples, got %d", len(cases))
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			req := readRequest(t, filepath.Join(dir, "request.json"))
			b := jobspec.Builder{
				Settings:  jobspec.Settings{AgentContainer: "magekube-agent"},
				ProjectFS: func(string) fs.FS { return os.DirFS(filepath.Join(dir, "project")) },
			}
			job, err := b.Build(pod, req)
			if err != nil {
				t.Fatal(err)
			}
			ensureNamespace(t, job.Namespace)
			_, err = env.Client.BatchV1().Jobs(job.Namespace).Create(t.Context(), job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Fatalf("API server rejected the %s Job: %v", filepath.Base(dir), err)
			}
		})
	}
}

// TestRenderFromTheAPI runs `agent render` the way the sidecar reads its
// pod: from the API, after the API server defaulted it. The rendered Job
// must be accepted and create its pod through the real Job controller.
func TestRenderFromTheAPI(t *testing.T) {
	ns := "mage" + "-render"
	ensureNamespace(t, ns)
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	waitSA(t, ns)
	pod := readPod(t)
	pod.Namespace = ns
	pod.Spec.ServiceAccountName = "default"
	if _, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "metadata.yaml"), []byte("k8s_executor_config:\n  job_name_prefix: render\n  resource_limits: {memory: 256Mi}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(t.TempDir(), "r.json")
	req := `{"apiVersion":"magekube/v1","id":"render-1","kind":"block","project_dir":"` + project + `","pipeline_uuid":"etl","block_uuid":"load","block_run_id":9}`
	if err := os.WriteFile(reqFile, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr := agent(t, "--kubeconfig", env.Kubeconfig, "--pod-name", pod.Name, "--pod-namespace", ns, "render", reqFile)
	job := &batchv1.Job{}
	if err := yaml.UnmarshalStrict(out, job); err != nil {
		t.Fatalf("render output is not a Job: %v\n%s\nstderr: %s", err, out, stderr)
	}
	if job.Name != "mage-render-block-9" || job.Namespace != ns || job.Spec.Template.Spec.Containers[0].Image != "mageai/mageai:0.9.76" {
		t.Errorf("rendered %s/%s image %s", job.Namespace, job.Name, job.Spec.Template.Spec.Containers[0].Image)
	}
	created, err := env.Client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("API server rejected the rendered Job: %v", err)
	}
	waitFor(t, "the Job controller to create the Job's pod", func() bool {
		pods, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: jobspec.LabelRun + "=render-1"})
		return err == nil && len(pods.Items) == 1 && pods.Items[0].OwnerReferences[0].UID == created.UID
	})
}

func TestRenderReportsEveryProblem(t *testing.T) {
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "metadata.yaml"), []byte("k8s_executor_config:\n  resorce_limits: {memory: 1Gi}\n  pod: {tolerations: [{operator: Equals}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(t.TempDir(), "r.json")
	req := `{"apiVersion":"magekube/v1","id":"bad","kind":"block","project_dir":"` + project + `","pipeline_uuid":"etl","block_uuid":"load","block_run_id":1,"executor_config":{"resource_limits":{"memory":"2Gx"}}}`
	if err := os.WriteFile(reqFile, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agentBin(t), "render", "--pod-file", filepath.Join(seedDir, "pod.yaml"), reqFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("render succeeded on a bad config")
	}
	for _, want := range []string{
		`metadata.yaml: k8s_executor_config.resorce_limits: unknown field "resorce_limits", did you mean "resource_limits"?`,
		`metadata.yaml: k8s_executor_config.pod.tolerations[0].operator: "Equals" is not one of Equal, Exists`,
		`request: executor_config.resource_limits.memory: "2Gx" is not a quantity`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout should be empty, got %s", stdout.String())
	}
}
