package execconfig

import (
	"encoding/json"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Config is Mage's k8s_executor_config after merging. Both of Mage's
// formats are accepted: the simple one (resource_requests, resource_limits,
// container_config, namespace, service_account_name) and the detailed one
// (metadata, container, pod, job). Keys are snake_case at the top and in
// pod:/container:/job:; Kubernetes objects inside (env, volumes, volume
// mounts, affinity, tolerations) use the API's camelCase, and their
// snake_case spellings are accepted too.
type Config struct {
	// JobNamePrefix is the middle of the Job name; may contain {trigger_name}.
	JobNamePrefix string `json:"job_name_prefix,omitempty"`
	// Namespace for the Job; metadata.namespace wins over it.
	Namespace string `json:"namespace,omitempty"`
	// ServiceAccountName wins over pod.service_account_name (as in Mage).
	ServiceAccountName string              `json:"service_account_name,omitempty"`
	ResourceRequests   corev1.ResourceList `json:"resource_requests,omitempty"`
	ResourceLimits     corev1.ResourceList `json:"resource_limits,omitempty"`
	// ContainerConfig is a whole container spec merged over the container.
	ContainerConfig *corev1.Container `json:"container_config,omitempty"`
	Metadata        *Metadata         `json:"metadata,omitempty"`
	Container       *Container        `json:"container,omitempty"`
	Pod             *Pod              `json:"pod,omitempty"`
	Job             *Job              `json:"job,omitempty"`
	// ConfigFile names a job template file read as the lowest level (as
	// Mage's K8S_CONFIG_FILE); it names a file, it sets no Job field.
	ConfigFile string `json:"config_file,omitempty"`
}

// Metadata is the detailed format's metadata: for the Job and its pods.
type Metadata struct {
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Container is the detailed format's container: section.
type Container struct {
	Name            string                       `json:"name,omitempty"`
	Image           string                       `json:"image,omitempty"`
	ImagePullPolicy corev1.PullPolicy            `json:"image_pull_policy,omitempty"`
	Command         []string                     `json:"command,omitempty"`
	Args            []string                     `json:"args,omitempty"`
	WorkingDir      string                       `json:"working_dir,omitempty"`
	Env             []corev1.EnvVar              `json:"env,omitempty"`
	EnvFrom         []corev1.EnvFromSource       `json:"env_from,omitempty"`
	VolumeMounts    []corev1.VolumeMount         `json:"volume_mounts,omitempty"`
	Resources       *corev1.ResourceRequirements `json:"resources,omitempty"`
	SecurityContext *corev1.SecurityContext      `json:"security_context,omitempty"`
}

// Pod is the detailed format's pod: section.
type Pod struct {
	ServiceAccountName string                     `json:"service_account_name,omitempty"`
	NodeSelector       map[string]string          `json:"node_selector,omitempty"`
	Tolerations        []corev1.Toleration        `json:"tolerations,omitempty"`
	Affinity           *corev1.Affinity           `json:"affinity,omitempty"`
	SchedulerName      string                     `json:"scheduler_name,omitempty"`
	PriorityClassName  string                     `json:"priority_class_name,omitempty"`
	Volumes            []corev1.Volume            `json:"volumes,omitempty"`
	ImagePullSecrets   StringList                 `json:"image_pull_secrets,omitempty"`
	SecurityContext    *corev1.PodSecurityContext `json:"security_context,omitempty"`
	// InheritPlacement (magekube's): false gives the Job none of the server
	// pod's node selector, tolerations and affinity, only the config's
	// (default true: the Job lands where the Mage server may).
	InheritPlacement *bool `json:"inherit_placement,omitempty"`
}

// Job is the detailed format's job: section.
type Job struct {
	ActiveDeadlineSeconds   *int64 `json:"active_deadline_seconds,omitempty"`
	BackoffLimit            *int32 `json:"backoff_limit,omitempty"`
	TTLSecondsAfterFinished *int32 `json:"ttl_seconds_after_finished,omitempty"`
	// StartTimeoutSeconds (magekube's): how long the run may wait to
	// start (unschedulable, pulling) before it fails as StartTimeout;
	// default the agent's --start-timeout.
	StartTimeoutSeconds *int64 `json:"start_timeout_seconds,omitempty"`
	// PodFailurePolicy is the Job's podFailurePolicy as the API takes it
	// (e.g. ignore disruptions: a pod evicted from a spot node is retried
	// without counting against backoff_limit).
	PodFailurePolicy *batchv1.PodFailurePolicy `json:"pod_failure_policy,omitempty"`
}

// StringList is one string or a list of strings (Mage takes a single
// image pull secret name; magekube takes either).
type StringList []string

// UnmarshalJSON accepts "name" and ["a", "b"].
func (s *StringList) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = StringList{one}
		if one == "" {
			*s = nil
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("expected a string or a list of strings, got %s", data)
	}
	*s = many
	return nil
}
