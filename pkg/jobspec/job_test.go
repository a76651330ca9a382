package jobspec

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/protocol"
)

func serverPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mage-0", Namespace: "mage"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "mage-server",
			HostNetwork:        true,
			NodeName:           "node-1",
			DNSPolicy:          corev1.DNSClusterFirstWithHostNet,
			NodeSelector:       map[string]string{"pool": "a"},
			Tolerations:        []corev1.Toleration{{Key: "t", Operator: "Exists"}},
			InitContainers:     []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers: []corev1.Container{
				{Name: "magekube-agent", Image: "agent:v1", ImagePullPolicy: corev1.PullNever,
					Env:          []corev1.EnvVar{{Name: "AGENT_ONLY", Value: "x"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/secrets"}}},
				{Name: "mage", Image: "mage:v1", WorkingDir: "/home/src",
					Ports:         []corev1.ContainerPort{{ContainerPort: 6789}},
					LivenessProbe: &corev1.Probe{},
					Lifecycle:     &corev1.Lifecycle{},
					Resources:     corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("3")}},
					Env:           []corev1.EnvVar{{Name: "A", Value: "server"}, {Name: "B", Value: "server"}, {Name: "MAGE_CLUSTER_UUID", Value: "c9"}},
					EnvFrom:       []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}},
					VolumeMounts:  []corev1.VolumeMount{{Name: "fs", MountPath: "/home/src"}, {Name: "cache", MountPath: "/cache"}}},
			},
			Volumes: []corev1.Volume{{Name: "fs"}, {Name: "cache"}, {Name: "token"}, {Name: "unused"}},
		},
	}
}

var blockReq = &protocol.Request{ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/home/src/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 5}

func build(t *testing.T, cfg *execconfig.Config) *corev1.PodSpec {
	t.Helper()
	job, err := Job(Input{Pod: serverPod(), Config: cfg, Request: blockReq, Settings: Settings{AgentContainer: "magekube-agent", TraceParent: "00-abc-def-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.Name != "c9-data-prep-block-5" || job.Namespace != "mage" {
		t.Errorf("job %s/%s", job.Namespace, job.Name)
	}
	return &job.Spec.Template.Spec
}

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, i := range items {
		out = append(out, name(i))
	}
	return out
}

func TestInheritsTheMageContainerOnly(t *testing.T) {
	t.Parallel()
	spec := build(t, nil)
	c := spec.Containers[0]
	if len(spec.Containers) != 1 || c.Image != "mage:v1" || c.WorkingDir != "/home/src" {
		t.Fatalf("containers %+v", spec.Containers)
	}
	if c.Ports != nil || c.LivenessProbe != nil || c.Lifecycle != nil || len(c.Resources.Requests) != 0 {
		t.Errorf("ports, probes, lifecycle or resources leaked: %+v", c)
	}
	envs := names(c.Env, func(e corev1.EnvVar) string { return e.Name + "=" + e.Value })
	want := []string{"A=server", "B=server", "MAGE_CLUSTER_UUID=c9", "MAGEKUBE_RUN_ID=r1", "MAGEKUBE_POD_NAME=", "MAGEKUBE_RUN_KEY=", "TRACEPARENT=00-abc-def-01"}
	if diff := cmp.Diff(want, envs); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if len(c.EnvFrom) != 1 {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}
	if got := names(spec.Volumes, func(v corev1.Volume) string { return v.Name }); !cmp.Equal(got, []string{"fs", "cache", RunnerVolumeName}) {
		t.Errorf("volumes %v: want only the mounted ones", got)
	}
	if spec.HostNetwork || spec.NodeName != "" || spec.DNSPolicy != corev1.DNSClusterFirst || len(spec.InitContainers) != 1 || spec.InitContainers[0].Image != "agent:v1" || spec.InitContainers[0].ImagePullPolicy != corev1.PullNever {
		t.Errorf("pod-level leak or runner init wrong: %+v", spec)
	}
	if spec.ServiceAccountName != DefaultServiceAccount || spec.NodeSelector["pool"] != "a" || len(userTolerations(spec.Tolerations)) != 1 {
		t.Errorf("scheduling not inherited: %+v", spec)
	}
	wantCmd := "/magekube/bin/runner exec --run-dir /home/src/.magekube/runs/r1 -- /app/run_app.sh mage run /home/src/p etl --block-uuid load --executor-type local_python --block-run-id 5"
	if got := strings.Join(c.Command, " "); got != wantCmd {
		t.Errorf("command\ngot  %s\nwant %s", got, wantCmd)
	}
}

func TestConfigWins(t *testing.T) {
	t.Parallel()
	gpu := corev1.ResourceName("nvidia.com/gpu")
	spec := build(t, &execconfig.Config{
		ResourceRequests: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi")},
		ResourceLimits:   corev1.ResourceList{"memory": resource.MustParse("2Gi")},
		Container: &execconfig.Container{
			Image: "custom:v2",
			Env:   []corev1.EnvVar{{Name: "B", Value: "config"}, {Name: "C", Value: "config"}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "data", MountPath: "/home/src"},   // replaces the server's mount at that path
				{Name: "cache", MountPath: "/var/cache"}, // moves the cache mount
			},
			Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{gpu: resource.MustParse("1")}, Limits: corev1.ResourceList{gpu: resource.MustParse("1")}},
		},
		Pod: &execconfig.Pod{
			NodeSelector:       map[string]string{"node-type": "gpu"},
			Volumes:            []corev1.Volume{{Name: "data"}},
			ImagePullSecrets:   execconfig.StringList{"one", "two"},
			ServiceAccountName: "jobs",
		},
	})
	c := spec.Containers[0]
	if c.Image != "custom:v2" || spec.ServiceAccountName != "jobs" || spec.NodeSelector["node-type"] != "gpu" || len(spec.NodeSelector) != 1 {
		t.Errorf("config ignored: %+v", spec)
	}
	envs := names(c.Env, func(e corev1.EnvVar) string { return e.Name + "=" + e.Value })[:4]
	if diff := cmp.Diff([]string{"A=server", "B=config", "MAGE_CLUSTER_UUID=c9", "C=config"}, envs); diff != "" {
		t.Errorf("env merge (-want +got):\n%s", diff)
	}
	mounts := names(c.VolumeMounts, func(m corev1.VolumeMount) string { return m.Name + ":" + m.MountPath })
	if diff := cmp.Diff([]string{"data:/home/src", "cache:/var/cache", RunnerVolumeName + ":" + RunnerMountPath}, mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi"), gpu: resource.MustParse("1")},
		Limits:   corev1.ResourceList{"memory": resource.MustParse("2Gi"), gpu: resource.MustParse("1")},
	}
	if !cmp.Equal(want.Requests, c.Resources.Requests) || !cmp.Equal(want.Limits, c.Resources.Limits) {
		t.Errorf("resources %+v, want %+v", c.Resources, want)
	}
	if got := names(spec.ImagePullSecrets, func(r corev1.LocalObjectReference) string { return r.Name }); !cmp.Equal(got, []string{"one", "two"}) {
		t.Errorf("image pull secrets %v", got)
	}
}

func TestUndefinedVolumeIsAConfigError(t *testing.T) {
	t.Parallel()
	_, err := Job(Input{Pod: serverPod(), Request: blockReq, Settings: Settings{AgentContainer: "magekube-agent"},
		Config: &execconfig.Config{Container: &execconfig.Container{VolumeMounts: []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}}}})
	if err == nil || !strings.Contains(err.Error(), `volume mount "nope" at /x: no volume of that name`) {
		t.Errorf("got %v", err)
	}
}

func TestRequestCommandAndJobFields(t *testing.T) {
	t.Parallel()
	req := *blockReq
	req.Command = []string{"python", "-c", "print(1)"}
	two, hour := int32(2), int64(3600)
	job, err := Job(Input{Pod: serverPod(), Request: &req, Settings: Settings{AgentContainer: "magekube-agent", JobDir: "/mnt/mk"},
		Config: &execconfig.Config{Job: &execconfig.Job{BackoffLimit: &two, ActiveDeadlineSeconds: &hour}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(job.Spec.Template.Spec.Containers[0].Command, " "); got != "/magekube/bin/runner exec --run-dir /mnt/mk/runs/r1 -- python -c print(1)" {
		t.Errorf("command %s", got)
	}
	if *job.Spec.BackoffLimit != 2 || *job.Spec.ActiveDeadlineSeconds != 3600 || *job.Spec.TTLSecondsAfterFinished != DefaultTTLSeconds {
		t.Errorf("job spec %+v", job.Spec)
	}
	if job.Labels[LabelRun] != "r1" || job.Labels[LabelManagedBy] != ManagedByValue || job.Annotations[AnnotationRunID] != "r1" {
		t.Errorf("labels %v annotations %v", job.Labels, job.Annotations)
	}
}

// TestMageJobDefaults: what Mage's executor does with a job: section
// without backoff_limit (Kubernetes' default) and with container_config
// (its name, command and args).
func TestMageJobDefaults(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "mage"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mage", Image: "mage:1"}}}}
	req := &protocol.Request{ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1,
		Command: []string{"/app/run_app.sh", "mage", "run"}}
	s := Settings{RunnerImage: "runner:1"}

	job, err := Job(Input{Pod: pod, Request: req, Settings: s, Config: &execconfig.Config{}})
	if err != nil || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
		t.Fatalf("no job: section: backoffLimit %v, want 0 (%v)", job.Spec.BackoffLimit, err)
	}
	deadline, start := int64(60), int64(300)
	job, err = Job(Input{Pod: pod, Request: req, Settings: s, Config: &execconfig.Config{Job: &execconfig.Job{ActiveDeadlineSeconds: &deadline, StartTimeoutSeconds: &start}}})
	if err != nil || job.Spec.BackoffLimit != nil {
		t.Fatalf("job: without backoff_limit: backoffLimit %v, want unset (%v)", job.Spec.BackoffLimit, err)
	}
	if got := job.Annotations[AnnotationStartTimeout]; got != "300" {
		t.Errorf("start timeout annotation %q, want 300", got)
	}

	cc := &corev1.Container{Command: []string{"python", "-m", "job"}, Args: []string{"--fast"}}
	job, err = Job(Input{Pod: pod, Request: req, Settings: s, Config: &execconfig.Config{ContainerConfig: cc}})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if c.Name != execconfig.ContainerConfigName {
		t.Errorf("container name %q, want %q", c.Name, execconfig.ContainerConfigName)
	}
	if got := strings.Join(c.Command[len(c.Command)-4:], " "); got != "python -m job --fast" || c.Command[len(c.Command)-5] != "--" {
		t.Errorf("command %q ends in %q, want container_config's command and args", c.Command, got)
	}
}

// TestPlacementAndPodFailurePolicy: pod.inherit_placement false drops the
// server pod's node selector, tolerations and affinity (only the
// config's stay); job.pod_failure_policy passes through, e.g. to retry
// evicted pods without counting them against backoff_limit.
func TestPlacementAndPodFailurePolicy(t *testing.T) {
	t.Parallel()
	no := false
	spec := build(t, &execconfig.Config{Pod: &execconfig.Pod{InheritPlacement: &no, Tolerations: []corev1.Toleration{{Key: "spot", Operator: "Exists"}}}})
	if tols := userTolerations(spec.Tolerations); spec.NodeSelector != nil || spec.Affinity != nil || len(tols) != 1 || tols[0].Key != "spot" {
		t.Errorf("placement: selector %v, affinity %v, tolerations %v", spec.NodeSelector, spec.Affinity, spec.Tolerations)
	}
	if spec := build(t, nil); spec.NodeSelector["pool"] != "a" || len(userTolerations(spec.Tolerations)) != 1 {
		t.Errorf("inherited placement lost: %v %v", spec.NodeSelector, spec.Tolerations)
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}}
	job, err := Job(Input{Pod: serverPod(), Request: blockReq, Settings: Settings{AgentContainer: "magekube-agent"},
		Config: &execconfig.Config{Job: &execconfig.Job{PodFailurePolicy: policy}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(policy, job.Spec.PodFailurePolicy); diff != "" {
		t.Errorf("pod failure policy (-want +got):\n%s", diff)
	}
}

// userTolerations drops the node-loss tolerations the agent bounds
// (TestNodeLossBounded).
func userTolerations(tols []corev1.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range tols {
		if !slices.Contains(NodeLossTaints, t.Key) {
			out = append(out, t)
		}
	}
	return out
}

// TestNodeLossBounded: a Job's pod tolerates a node that stopped
// reporting for NodeLostAfter at most, never longer than the server pod:
// the API server's 300 s default is shortened, a shorter one kept, a
// missing one added ahead of a toleration of every taint (the taint
// manager takes the first match); a negative setting keeps them all.
func TestNodeLossBounded(t *testing.T) {
	t.Parallel()
	secs := func(n int64) *int64 { return &n }
	wildcard := corev1.Toleration{Operator: corev1.TolerationOpExists}
	for _, c := range []struct {
		name  string
		tols  []corev1.Toleration
		after time.Duration
		want  []corev1.Toleration
	}{{
		name: "admission defaults shortened",
		tols: []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(300)},
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(300)},
		},
		want: []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(30)},
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(30)},
		},
	}, {
		name: "shorter kept, forever bounded, missing added first",
		tols: []corev1.Toleration{
			wildcard,
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(10)},
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists"},
		},
		after: 20 * time.Second,
		want: []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(20)},
			wildcard,
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(10)},
			{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(20)},
		},
	}, {
		name:  "switched off",
		tols:  []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(300)}},
		after: -1,
		want:  []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs(300)}},
	}} {
		t.Run(c.name, func(t *testing.T) {
			pod := loadPod(t)
			pod.Spec.Tolerations = c.tols
			b := Builder{Settings: Settings{AgentContainer: "magekube-agent", NodeLostAfter: c.after}}
			job, err := b.Build(pod, loadRequest(t, "testdata/seed/minimal/request.json"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, job.Spec.Template.Spec.Tolerations); diff != "" {
				t.Errorf("tolerations (-want +got):\n%s", diff)
			}
		})
	}
}
