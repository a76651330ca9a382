package jobspec

import (
	"path"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// Labels and annotations magekube puts on its Jobs and their pods.
const (
	LabelManagedBy     = "app.kubernetes.io/managed-by"
	ManagedByValue     = "magekube"
	LabelInstance      = "magekube.io/instance"
	LabelRun           = "magekube.io/run"
	LabelKind          = "magekube.io/kind"
	LabelPipelineRunID = "magekube.io/pipeline-run-id"
	LabelBlockRunID    = "magekube.io/block-run-id"

	AnnotationRunID              = "magekube.io/run-id"
	AnnotationPipelineUUID       = "magekube.io/pipeline-uuid"
	AnnotationBlockUUID          = "magekube.io/block-uuid"
	AnnotationTriggerName        = "magekube.io/trigger-name"
	AnnotationExecutionPartition = "magekube.io/execution-partition"
	AnnotationTraceParent        = "magekube.io/traceparent"
	// AnnotationStartTimeout carries job.start_timeout_seconds to the agent.
	AnnotationStartTimeout = "magekube.io/start-timeout-seconds"
)

// Names of what magekube adds to the pod.
const (
	RunnerInitName   = "magekube-runner-install"
	RunnerVolumeName = "magekube-bin"
	RunnerMountPath  = "/magekube/bin"
	// RunnerUser is the runner image's user (USER 65532 in its Dockerfile);
	// the init container runs as it.
	RunnerUser int64 = 65532
	// DefaultRunnerPath is where the images keep the runner binary.
	DefaultRunnerPath = "/usr/local/bin/runner"
	// DefaultContainerName is Mage's name for the Job's container.
	DefaultContainerName = "mage-job-container"
	// DefaultServiceAccount is what Mage's executor uses when none is set.
	DefaultServiceAccount = "default"
	// DefaultTTLSeconds keeps a finished Job an hour for describe and logs.
	DefaultTTLSeconds int32 = 3600
	// DefaultInstance labels Jobs of an agent started without --instance.
	DefaultInstance = "magekube"
	// DefaultNodeLostAfter is how long a Job's pod stays bound to a node
	// that stopped reporting (after the node controller's grace period,
	// 50 s by default) before Kubernetes evicts it and the run fails as
	// NodeLost. Kubernetes' own default is 300 s.
	DefaultNodeLostAfter = 30 * time.Second
)

// Settings are the agent's choices, as opposed to the user's config.
type Settings struct {
	// ServerContainer names the Mage container in the server pod; empty
	// means the first container that is not AgentContainer.
	ServerContainer string
	// AgentContainer is the agent's own container: never copied into Jobs.
	AgentContainer string
	// RunnerImage holds the runner; empty means the agent container's image.
	RunnerImage string
	// RunnerPath is the runner binary inside RunnerImage.
	RunnerPath string
	// JobDir is the magekube root directory as the Job's container sees it.
	JobDir string
	// Instance labels this agent's Jobs so its informers select only them.
	Instance string
	// ClusterUUID is MAGE_CLUSTER_UUID; empty means the Mage container's
	// declared value, else Mage's default "mage".
	ClusterUUID string
	// TraceParent goes into the Job's env as TRACEPARENT (W3C).
	TraceParent string
	// DefaultTTL applies when the config sets no ttl_seconds_after_finished.
	DefaultTTL int32
	// NodeLostAfter bounds the Job pod's tolerance of the node-loss taints
	// (node.kubernetes.io/unreachable and not-ready, NoExecute); zero
	// means DefaultNodeLostAfter, negative keeps the tolerations inherited.
	NodeLostAfter time.Duration
}

// Default fills unset settings with magekube's defaults.
func (s Settings) Default() Settings {
	if s.RunnerPath == "" {
		s.RunnerPath = DefaultRunnerPath
	}
	if s.JobDir == "" {
		s.JobDir = protocol.DefaultRoot
	}
	if s.Instance == "" {
		s.Instance = DefaultInstance
	}
	if s.DefaultTTL == 0 {
		s.DefaultTTL = DefaultTTLSeconds
	}
	if s.NodeLostAfter == 0 {
		s.NodeLostAfter = DefaultNodeLostAfter
	}
	return s
}

// RunDir is the run's directory as the Job sees it.
func (s Settings) RunDir(id string) string {
	return path.Join(s.JobDir, protocol.RunsDir, id)
}
