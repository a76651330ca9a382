package jobspec

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/fixtures"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadPod(t *testing.T) *corev1.Pod { return fixtures.Pod(t, "testdata/pod.yaml") }

func loadRequest(t *testing.T, path string) *protocol.Request { return fixtures.Request(t, path) }

func testBuilder(projectDir string) Builder {
	return Builder{
		Settings:  Settings{AgentContainer: "magekube-agent"},
		ProjectFS: func(string) fs.FS { return os.DirFS(projectDir) },
	}
}

// TestSeedExamples builds a Job for every configuration example of Mage's
// Kubernetes executor documentation and compares it with a golden file.
func TestSeedExamples(t *testing.T) {
	cases, err := filepath.Glob("testdata/seed/*")
	if err != nil || len(cases) < 8 {
		t.Fatalf("want the 8 seed examples, got %v (%v)", cases, err)
	}
	pod := loadPod(t)
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			req := loadRequest(t, filepath.Join(dir, "request.json"))
			job, err := testBuilder(filepath.Join(dir, "project")).Build(pod, req)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			got, err := yaml.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "job.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/dispatch -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("job differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestBuildReportsConfigErrors(t *testing.T) {
	pod := loadPod(t)
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	req.ExecutorConfig = map[string]any{"resource_limits": map[string]any{"memory": "2Gx"}}
	_, err := testBuilder("testdata/seed/minimal/project").Build(pod, req)
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("want a ConfigError, got %v", err)
	}
	want := `request: executor_config.resource_limits.memory: "2Gx" is not a quantity (examples: "500m", "2", "512Mi", "2Gi")`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}

func TestBuildReportsSetupErrors(t *testing.T) {
	pod := loadPod(t)
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	b := testBuilder("testdata/seed/minimal/project")
	b.Settings.ServerContainer = "no-such-container"
	_, err := b.Build(pod, req)
	var cfgErr *ConfigError
	var setup *SetupError
	if errors.As(err, &cfgErr) || !errors.As(err, &setup) {
		t.Fatalf("want a setup error, got %v", err)
	}
}

// TestTemplatesSeeOnlyTheMageContainer: env_var() must never copy the
// agent's own environment (its collector credentials) into a Job.
func TestTemplatesSeeOnlyTheMageContainer(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=agent-secret")
	pod := loadPod(t)
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	b := testBuilder("testdata/seed/minimal/project")

	req.ExecutorConfig = map[string]any{"container": map[string]any{"env": []any{
		map[string]any{"name": "H", "value": "{{ env_var('OTEL_EXPORTER_OTLP_HEADERS') }}"}}}}
	if _, err := b.Build(pod, req); err == nil {
		t.Fatal("env_var() of the agent's environment resolved")
	}

	req.ExecutorConfig = map[string]any{"container": map[string]any{"env": []any{
		map[string]any{"name": "E", "value": "{{ env_var('ENVIRONMENT') }}"}}}}
	job, err := b.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "E" && e.Value != "staging" {
			t.Errorf("E = %q, want the Mage container's ENVIRONMENT", e.Value)
		}
	}
}

// TestProjectFilesAreReadSafely: a metadata.yaml that is a FIFO, a link
// or too large fails the run with a config error naming it, at once.
func TestProjectFilesAreReadSafely(t *testing.T) {
	pod := loadPod(t)
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	for name, plant := range map[string]func(path string) error{
		"FIFO":      func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"link":      func(p string) error { return os.Symlink("/dev/zero", p) },
		"too large": func(p string) error { return os.WriteFile(p, make([]byte, protocol.MaxConfigBytes+1), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := plant(filepath.Join(dir, "metadata.yaml")); err != nil {
				t.Fatal(err)
			}
			r := *req
			r.ProjectDir = dir
			b := Builder{Settings: Settings{AgentContainer: "magekube-agent"}}
			done := make(chan error, 1)
			go func() { _, err := b.Build(pod, &r); done <- err }()
			select {
			case err := <-done:
				var cfgErr *ConfigError
				if !errors.As(err, &cfgErr) || !strings.Contains(err.Error(), "metadata.yaml") {
					t.Errorf("want a config error naming metadata.yaml, got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Build blocked on the project's metadata.yaml")
			}
		})
	}
}

// TestJobTemplateFile: the file K8S_CONFIG_FILE names in the Mage
// container's env (or config_file) is the lowest level; a path outside
// the Mage project's directory is refused by name.
func TestJobTemplateFile(t *testing.T) {
	root := t.TempDir()
	project := filepath.Join(root, "default_repo")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "k8s_job.yaml"), "pod: {tolerations: [{key: batch, operator: Exists}]}\njob: {backoff_limit: 3}\n")
	write(filepath.Join(project, "metadata.yaml"), "k8s_executor_config: {job: {backoff_limit: 1}}\n")
	pod := loadPod(t)
	pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: "K8S_CONFIG_FILE", Value: filepath.Join(root, "k8s_job.yaml")})
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	req.ProjectDir = project
	b := Builder{Settings: Settings{AgentContainer: "magekube-agent"}}
	job, err := b.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if tols := userTolerations(spec.Tolerations); len(tols) != 1 || tols[0].Key != "batch" || *job.Spec.BackoffLimit != 1 {
		t.Errorf("tolerations %v, backoffLimit %d: want the template's tolerations and the project's backoff_limit", spec.Tolerations, *job.Spec.BackoffLimit)
	}

	req.ExecutorConfig = map[string]any{"config_file": "/etc/passwd"}
	_, err = b.Build(pod, req)
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) || !strings.Contains(err.Error(), `"/etc/passwd" must be an absolute path inside `+root) {
		t.Errorf("want a config error refusing /etc/passwd, got %v", err)
	}
}

// TestTemplatesSeeTheMageProcessEnv: values the Mage trigger sends with
// the request (from Secrets, ConfigMaps, the downward API) are what
// env_var() sees first; then the Mage container's literal env.
func TestTemplatesSeeTheMageProcessEnv(t *testing.T) {
	pod := loadPod(t)
	req := loadRequest(t, "testdata/seed/minimal/request.json")
	req.Env = map[string]string{"JOBS_NAMESPACE": "from-a-secret", "ENVIRONMENT": "prod"}
	req.ExecutorConfig = map[string]any{
		"namespace": "{{ env_var('JOBS_NAMESPACE') }}",
		"metadata":  map[string]any{"labels": map[string]any{"env": "{{ env_var('ENVIRONMENT') }}", "user": "{{ env_var('K8S_NAMESPACE') }}"}},
	}
	job, err := testBuilder("testdata/seed/minimal/project").Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "from-a-secret" || job.Labels["env"] != "prod" || job.Labels["user"] != "mage-jobs" {
		t.Errorf("namespace %q, labels %v: want the request's env first, then the container's literal env", job.Namespace, job.Labels)
	}
}
