package jobspec

import (
	"errors"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/protocol"
)

// Input is everything a Job is built from.
type Input struct {
	Pod      *corev1.Pod
	Config   *execconfig.Config
	Request  *protocol.Request
	Settings Settings
}

// SetupError is a problem with the agent's setup (its pod, its flags)
// rather than with the run's config; other errors from Job are the config's.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Job builds the Job for one run. Errors name the config field at fault.
func Job(in Input) (*batchv1.Job, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = &execconfig.Config{}
	}
	s, server, agent, err := setup(in)
	if err != nil {
		return nil, err
	}
	main, err := mainContainer(server, cfg, in.Request, s)
	if err != nil {
		return nil, err
	}
	pod, err := podSpec(in.Pod, server, cfg, main, runnerInit(s, agent), s.NodeLostAfter)
	if err != nil {
		return nil, err
	}
	if err := keepMountedVolumes(&pod, in.Pod.Spec.Volumes, cfgVolumes(cfg)); err != nil {
		return nil, err
	}

	name := JobName(s.ClusterUUID, cfg.JobNamePrefix, in.Request)
	labels, annotations := metadata(cfg, in.Request, s)
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   Namespace(cfg, in.Pod),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptrTo(int32(0)),
			TTLSecondsAfterFinished: ptrTo(s.DefaultTTL),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(labels), Annotations: copyMap(annotations)},
				Spec:       pod,
			},
		},
	}
	applyJobSection(job, cfg.Job)
	return job, nil
}

// setup completes the settings from the server pod (the runner image
// from the agent's container, the cluster uuid from Mage's env) and finds
// the Mage and agent containers; a problem is a *SetupError.
func setup(in Input) (Settings, *corev1.Container, *corev1.Container, error) {
	s := in.Settings.Default()
	server, agent, err := containers(in.Pod, s)
	if err != nil {
		return s, nil, nil, &SetupError{err}
	}
	if s.RunnerImage == "" && agent != nil {
		s.RunnerImage = agent.Image
	}
	if s.RunnerImage == "" {
		return s, nil, nil, &SetupError{errors.New("no runner image: set --runner-image or run the agent as a container of the server pod")}
	}
	if s.ClusterUUID == "" {
		s.ClusterUUID = literalEnv(server.Env, "MAGE_CLUSTER_UUID")
	}
	return s, server, agent, nil
}

// applyJobSection applies the config's job: section.
func applyJobSection(job *batchv1.Job, j *execconfig.Job) {
	if j != nil {
		// As in Mage: a job: section without backoff_limit leaves it unset
		// (Kubernetes' default, 6); without a job: section it is 0.
		job.Spec.BackoffLimit = j.BackoffLimit
		if j.TTLSecondsAfterFinished != nil {
			job.Spec.TTLSecondsAfterFinished = j.TTLSecondsAfterFinished
		}
		job.Spec.ActiveDeadlineSeconds = j.ActiveDeadlineSeconds
		job.Spec.PodFailurePolicy = j.PodFailurePolicy.DeepCopy()
		if j.StartTimeoutSeconds != nil {
			job.Annotations[AnnotationStartTimeout] = strconv.FormatInt(*j.StartTimeoutSeconds, 10)
		}
	}
}

// Namespace is where the run's Job goes: metadata.namespace, else
// namespace, else the server pod's own namespace.
func Namespace(cfg *execconfig.Config, pod *corev1.Pod) string {
	if cfg != nil && cfg.Metadata != nil && cfg.Metadata.Namespace != "" {
		return cfg.Metadata.Namespace
	}
	if cfg != nil && cfg.Namespace != "" {
		return cfg.Namespace
	}
	return pod.Namespace
}

// containers finds the Mage container and the agent's own in the pod.
func containers(pod *corev1.Pod, s Settings) (server, agent *corev1.Container, err error) {
	if pod == nil {
		return nil, nil, errors.New("no server pod")
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		switch {
		case c.Name == s.AgentContainer && s.AgentContainer != "":
			agent = c
		case s.ServerContainer == "" && server == nil, c.Name == s.ServerContainer:
			server = c
		}
	}
	if server == nil {
		if s.ServerContainer != "" {
			return nil, nil, fmt.Errorf("server pod %s/%s has no container named %q (--server-container)", pod.Namespace, pod.Name, s.ServerContainer)
		}
		return nil, nil, fmt.Errorf("server pod %s/%s has no Mage container besides the agent's", pod.Namespace, pod.Name)
	}
	return server, agent, nil
}

func metadata(cfg *execconfig.Config, req *protocol.Request, s Settings) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	if cfg.Metadata != nil {
		for k, v := range cfg.Metadata.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Metadata.Annotations {
			annotations[k] = v
		}
	}
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelInstance] = s.Instance
	labels[LabelRun] = req.ID
	labels[LabelKind] = string(req.Kind)
	if req.PipelineRunID != 0 {
		labels[LabelPipelineRunID] = strconv.FormatInt(req.PipelineRunID, 10)
	}
	if req.Kind == protocol.KindBlock {
		labels[LabelBlockRunID] = strconv.FormatInt(req.BlockRunID, 10)
		annotations[AnnotationBlockUUID] = req.BlockUUID
	}
	annotations[AnnotationRunID] = req.ID
	annotations[AnnotationPipelineUUID] = req.PipelineUUID
	setIf(annotations, AnnotationTriggerName, req.TriggerName)
	setIf(annotations, AnnotationExecutionPartition, req.ExecutionPartition)
	setIf(annotations, AnnotationTraceParent, s.TraceParent)
	return labels, annotations
}

func literalEnv(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value
		}
	}
	return ""
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }
