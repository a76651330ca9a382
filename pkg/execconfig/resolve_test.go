package execconfig

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

func yamlMap(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func noEnv(string) (string, bool) { return "", false }

func TestResolveReportsEveryProblemWithItsPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config string
		want   []string
	}{
		{"bad quantity", `resource_limits: {memory: 2Gx}`, []string{
			`metadata.yaml: k8s_executor_config.resource_limits.memory: "2Gx" is not a quantity`}},
		{"unknown key with suggestion", `resorce_requests: {cpu: 1}`, []string{
			`k8s_executor_config.resorce_requests: unknown field "resorce_requests", did you mean "resource_requests"?`}},
		{"unknown nested key", `pod: {node_selectr: {a: b}}`, []string{
			`k8s_executor_config.pod.node_selectr: unknown field "node_selectr", did you mean "node_selector"?`}},
		{"unknown k8s key", `container: {volume_mounts: [{name: a, mountPth: /x}]}`, []string{
			`k8s_executor_config.container.volume_mounts[0].mountPth: unknown field "mountPth", did you mean "mountPath"?`}},
		{"toleration enums", `pod: {tolerations: [{key: a, operator: Equals, effect: NoScheduel}]}`, []string{
			`k8s_executor_config.pod.tolerations[0].operator: "Equals" is not one of Equal, Exists`,
			`k8s_executor_config.pod.tolerations[0].effect: "NoScheduel" is not one of NoSchedule, PreferNoSchedule, NoExecute`}},
		{"pull policy", `container: {image_pull_policy: Sometimes}`, []string{
			`k8s_executor_config.container.image_pull_policy: "Sometimes" is not one of Always, IfNotPresent, Never`}},
		{"container_config pull policy", `container_config: {image_pull_policy: sometimes}`, []string{
			`k8s_executor_config.container_config.imagePullPolicy: "sometimes" is not one of Always, IfNotPresent, Never`}},
		{"container_config keys a Job does not take", `container_config: {ports: [{containerPort: 6789}], readinessProbe: {exec: {command: ["true"]}}, tty: true}`, []string{
			`k8s_executor_config.container_config.ports: is not applied to a Job's container`,
			`k8s_executor_config.container_config.readinessProbe: is not applied`,
			`k8s_executor_config.container_config.tty: is not applied`}},
		{"start timeout", `job: {start_timeout_seconds: 0}`, []string{
			`k8s_executor_config.job.start_timeout_seconds: 0 must be a positive number of seconds`}},
		{"labels", `metadata: {labels: {"bad key!": v, ok: "not valid value!"}}`, []string{
			`k8s_executor_config.metadata.labels["bad key!"]: "bad key!" is not a valid label key`,
			`k8s_executor_config.metadata.labels.ok: "not valid value!" is not a valid label value`}},
		{"unset template", `namespace: "{{ env_var('NOPE') }}"`, []string{
			`k8s_executor_config.namespace: env_var('NOPE'): NOPE is not set in the Mage container`}},
		{"unknown template function", `namespace: "{{ mage_secret_var('x') }}"`, []string{
			`k8s_executor_config.namespace: template function mage_secret_var() is not supported`}},
		{"wrong types", `job: {backoff_limit: two, active_deadline_seconds: 1.5}
pod: {node_selector: [a]}
container: {env: {name: x}}`, []string{
			`k8s_executor_config.job.backoff_limit: expected a whole number, got string "two"`,
			`k8s_executor_config.job.active_deadline_seconds: expected a whole number that fits int64, got 1.5`,
			`k8s_executor_config.pod.node_selector: expected a map, got a list`,
			`k8s_executor_config.container.env: expected a list, got a map`}},
		{"ranges", `job: {backoff_limit: -1, active_deadline_seconds: 0, ttl_seconds_after_finished: -5}`, []string{
			`k8s_executor_config.job.backoff_limit: -1 must not be negative`,
			`k8s_executor_config.job.active_deadline_seconds: 0 must be a positive number of seconds`,
			`k8s_executor_config.job.ttl_seconds_after_finished: -5 must not be negative`}},
		{"names", `namespace: Data_Pipelines
pod: {service_account_name: "a b", image_pull_secrets: ["ok", "Not OK"]}`, []string{
			`k8s_executor_config.namespace: "Data_Pipelines" is not a valid name`,
			`k8s_executor_config.pod.service_account_name: "a b" is not a valid name`,
			`k8s_executor_config.pod.image_pull_secrets[1]: "Not OK" is not a valid name`}},
		{"request over limit", `resource_requests: {cpu: "2"}
resource_limits: {cpu: "1"}`, []string{
			`k8s_executor_config.resource_requests.cpu: request 2 is more than the limit 1`}},
		{"spelled twice", `pod: {node_selector: {a: b}, nodeSelector: {a: c}}`, []string{
			`given twice, as "nodeSelector" and "node_selector"`}},
		{"unquoted number in env", `container: {env: [{name: PORT, value: 8080}]}`, []string{
			`k8s_executor_config.container.env[0].value: expected a string, got number 8080 (quote it)`}},
		{"lists over the cap", `container: {env: [` + strings.Repeat("{name: A},", 1001) + `]}
pod: {tolerations: [` + strings.Repeat("{key: a},", 1001) + `], volumes: [{name: a}]}`, []string{
			`k8s_executor_config.container.env: has 1001 entries; the limit is 1000`,
			`k8s_executor_config.pod.tolerations: has 1001 entries; the limit is 1000`}},
		{"lists at the cap are checked as usual", `container: {env: [` + strings.Repeat("{name: A},", 999) + `{name: ""}]}`, []string{
			`k8s_executor_config.container.env[999].name: must not be empty`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Resolve([]Level{{Source: "metadata.yaml", Path: "k8s_executor_config", Values: yamlMap(t, tc.config)}}, Vars{Env: noEnv})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n, w := strings.Count(err.Error(), "\n")+1, len(tc.want); n != w {
				t.Errorf("want %d problems, got %d:\n%v", w, n, err)
			}
		})
	}
}

func TestResolveAllLevelsReportedTogether(t *testing.T) {
	t.Parallel()
	_, err := Resolve([]Level{
		{Source: "metadata.yaml", Path: "k8s_executor_config", Values: yamlMap(t, `resource_limits: {cpu: 2x}`)},
		{Source: "request", Path: "executor_config", Values: yamlMap(t, `job: {backof_limit: 1}`)},
	}, Vars{Env: noEnv})
	for _, w := range []string{
		`metadata.yaml: k8s_executor_config.resource_limits.cpu`,
		`request: executor_config.job.backof_limit: unknown field "backof_limit", did you mean "backoff_limit"?`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestDeepMergePrecedence(t *testing.T) {
	t.Parallel()
	cfg, err := Resolve([]Level{
		{Source: "project", Values: yamlMap(t, `
namespace: project-ns
job_name_prefix: p
pod:
  node_selector: {pool: data}
  tolerations: [{key: a, operator: Exists}]
resource_requests: {cpu: "1", memory: 1Gi}`)},
		{Source: "pipeline", Values: yamlMap(t, `
job_name_prefix: pipe
resource_requests: {memory: 2Gi}`)},
		{Source: "block", Values: yamlMap(t, `
pod:
  scheduler_name: gang
  tolerations: [{key: b, operator: Exists}]`)},
		{Source: "request", Values: map[string]any{"namespace": "request-ns"}},
	}, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Namespace:        "request-ns",
		JobNamePrefix:    "pipe",
		ResourceRequests: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("2Gi")},
		Pod: &Pod{
			NodeSelector:  map[string]string{"pool": "data"},
			SchedulerName: "gang",
			Tolerations:   []corev1.Toleration{{Key: "b", Operator: "Exists"}},
		},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("merged config (-want +got):\n%s", diff)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) { v, ok := map[string]string{"NS": "from-env"}[k]; return v, ok }
	cfg, err := Resolve([]Level{{Source: "project", Values: yamlMap(t, `
namespace: "{{ env_var('NS') }}"
service_account_name: "{{ env_var(\"SA\", 'fallback') }}"
job_name_prefix: "{{ variables('team') }}-{trigger_name}"
metadata: {labels: {run: "{{ run_no }}"}}
job: {backoff_limit: "{{ variables('retries') }}"}`)}},
		Vars{Env: env, Globals: map[string]any{"team": "growth", "run_no": 7.0, "retries": "3"}, TriggerName: "Daily_Sync"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "from-env" || cfg.ServiceAccountName != "fallback" || cfg.JobNamePrefix != "growth-daily-sync" ||
		cfg.Metadata.Labels["run"] != "7" || *cfg.Job.BackoffLimit != 3 {
		t.Errorf("rendered %+v %+v %+v", cfg, cfg.Metadata, cfg.Job)
	}
}

func TestSpellingsAccepted(t *testing.T) {
	t.Parallel()
	cfg, err := Resolve([]Level{{Source: "project", Values: yamlMap(t, `
container:
  volume_mounts: [{name: data, mount_path: /data, read_only: true}]
  env: [{name: A, value_from: {secretKeyRef: {name: s, key: k}}}]
pod:
  nodeSelector: {a: b}
  image_pull_secrets: [one, two]
  tolerations: [{key: k, operator: Exists, effect: NoExecute, toleration_seconds: 30}]`)}}, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Container.VolumeMounts[0]
	if m.MountPath != "/data" || !m.ReadOnly || cfg.Container.Env[0].ValueFrom.SecretKeyRef.Key != "k" ||
		cfg.Pod.NodeSelector["a"] != "b" || len(cfg.Pod.ImagePullSecrets) != 2 || *cfg.Pod.Tolerations[0].TolerationSeconds != 30 {
		t.Errorf("decoded %+v %+v", cfg.Container, cfg.Pod)
	}
}

func TestLevelsFromProjectFiles(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"metadata.yaml": {Data: []byte("k8s_executor_config:\n  namespace: a\n")},
		"pipelines/etl/metadata.yaml": {Data: []byte(`
executor_config: {job_name_prefix: p}
blocks:
- uuid: other
  executor_config: {namespace: wrong}
- uuid: load
  executor_config: {namespace: b}
`)},
	}
	levels, err := Levels(fsys, nil, "etl", "load", map[string]any{"job_name_prefix": "r"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range levels {
		got = append(got, l.Source+" "+l.Path)
	}
	want := []string{"metadata.yaml k8s_executor_config", "pipelines/etl/metadata.yaml executor_config",
		"pipelines/etl/metadata.yaml blocks[load].executor_config", "request executor_config"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("levels (-want +got):\n%s", diff)
	}
	cfg, err := Resolve(levels, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "b" || cfg.JobNamePrefix != "r" {
		t.Errorf("merged %+v", cfg)
	}
}

func TestLevelsReportsBadFiles(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"metadata.yaml":               {Data: []byte("k8s_executor_config:\n  namespace: {{ env_var('X') }}\n")},
		"pipelines/etl/metadata.yaml": {Data: []byte("executor_config: [1]\n")},
	}
	_, err := Levels(fsys, nil, "etl", "", nil)
	for _, w := range []string{"metadata.yaml: not valid YAML", "templates must be quoted", "pipelines/etl/metadata.yaml: executor_config: expected a map, got a list"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("resource_limits: {memory: 2Gi}\npod: {node_selector: {a: b}}", "pod: {tolerations: [{key: a}]}")
	f.Add("namespace: \"{{ env_var('X', 'y') }}\"", "job: {backoff_limit: 2}")
	f.Add("container: {env: [{name: a, valueFrom: {fieldRef: {fieldPath: x}}}]}", "container: null")
	f.Fuzz(func(t *testing.T, low, high string) {
		var a, b map[string]any
		if yaml.Unmarshal([]byte(low), &a) != nil || yaml.Unmarshal([]byte(high), &b) != nil {
			return
		}
		cfg, err := Resolve([]Level{{Source: "low", Values: a}, {Source: "high", Values: b}}, Vars{Env: noEnv})
		if (cfg == nil) == (err == nil) {
			t.Fatalf("exactly one of config and error must be set: %v %v", cfg, err)
		}
		if err == nil {
			if _, err := yaml.Marshal(cfg); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzResolveTemplates walks configs whose strings are templates: env_var
// sees only the given env, variables only the given globals, and no
// input panics or yields both a config and an error.
func FuzzResolveTemplates(f *testing.F) {
	f.Add("namespace: \"{{ env_var('NS') }}\"\njob_name_prefix: \"{trigger_name}-{{ x }}\"", "{{ variables('y') }}", "daily")
	f.Add("container: {env: [{name: A, value: \"{{ env_var('SECRET', 'd') }}\"}]}", "{{ env_var('NS', \"q\") }}", "")
	f.Add("metadata: {labels: {a: \"{{ y }}\"}}", "{% if x %}", "t r i g")
	f.Fuzz(func(t *testing.T, doc, tmpl, trigger string) {
		var low map[string]any
		if yaml.Unmarshal([]byte(doc), &low) != nil {
			return
		}
		high := map[string]any{"namespace": tmpl, "metadata": map[string]any{"annotations": map[string]any{"t": tmpl}}}
		env := func(name string) (string, bool) {
			if name == "NS" {
				return "mage-jobs", true
			}
			return "", false
		}
		vars := Vars{Env: env, Globals: map[string]any{"x": "1", "y": 2}, TriggerName: trigger}
		cfg, err := Resolve([]Level{{Source: "low", Values: low}, {Source: "request", Values: high}}, vars)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("exactly one of config and error must be set: %v %v", cfg, err)
		}
		if err == nil && strings.Contains(cfg.Namespace, "{{") {
			t.Fatalf("template left unrendered: %q", cfg.Namespace)
		}
	})
}

// TestResourcePrecedence: Mage's order (container.resources, then the
// top-level lists, then container_config.resources), resource by
// resource, keeping what only one place names.
func TestResourcePrecedence(t *testing.T) {
	t.Parallel()
	var tree map[string]any
	doc := `container: {resources: {limits: {nvidia.com/gpu: "1", memory: 1Gi, cpu: "1"}}}
resource_limits: {memory: 2Gi, cpu: "2"}
container_config: {resources: {limits: {cpu: "3"}}}`
	if err := yaml.Unmarshal([]byte(doc), &tree); err != nil {
		t.Fatal(err)
	}
	cfg, err := Resolve([]Level{{Source: "metadata.yaml", Values: tree}}, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, q := range cfg.Limits() {
		got[string(k)] = q.String()
	}
	want := map[string]string{"nvidia.com/gpu": "1", "memory": "2Gi", "cpu": "3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
}

// BenchmarkLargestConfig resolves a metadata.yaml at the agent's read cap
// (protocol.MaxConfigBytes, 2 MiB) of env entries: the most one config
// file can cost the agent. go test -bench LargestConfig -benchmem.
func BenchmarkLargestConfig(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("container:\n  env:\n")
	for i := 0; sb.Len() < 2<<20-64; i++ {
		fmt.Fprintf(&sb, "  - {name: VAR_%d, value: \"some value %d\"}\n", i, i)
	}
	doc := sb.String()
	for b.Loop() {
		var tree map[string]any
		if err := yaml.Unmarshal([]byte(doc), &tree); err != nil {
			b.Fatal(err)
		}
		if _, err := Resolve([]Level{{Source: "metadata.yaml", Values: tree}}, Vars{Env: noEnv}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(doc))/(1<<20), "MiB/file")
}

// TestPodFailurePolicyAndPlacement: the two keys as a user writes them in
// metadata.yaml.
func TestPodFailurePolicyAndPlacement(t *testing.T) {
	t.Parallel()
	cfg, err := Resolve([]Level{{Source: "project", Values: yamlMap(t, `
pod: {inherit_placement: false}
job:
  backoff_limit: 0
  pod_failure_policy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]`)}}, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Pod.InheritPlacement; p == nil || *p {
		t.Errorf("inherit_placement %v", p)
	}
	if r := cfg.Job.PodFailurePolicy.Rules; len(r) != 1 || r[0].Action != "Ignore" || r[0].OnPodConditions[0].Type != "DisruptionTarget" {
		t.Errorf("pod_failure_policy %+v", cfg.Job.PodFailurePolicy)
	}
}
