package protocol

// Reasons: one machine word saying why a run is where it is, in
// status.json's reason, the runner's result.json, Events and spans. This
// file is the only list: add a reason here, with its source and whether
// it is a problem, and docs/reasons.md (TestReasonsDoc) follows.
const (
	// The agent's.
	ReasonInvalidRequest = "InvalidRequest"
	ReasonInvalidConfig  = "InvalidConfig"
	ReasonForbidden      = "Forbidden"
	ReasonPolicyDenied   = "PolicyDenied"
	ReasonNameCollision  = "NameCollision"
	ReasonJobDeleted     = "JobDeleted"
	ReasonCancelled      = "Cancelled"
	ReasonStartTimeout   = "StartTimeout"
	ReasonQueueFull      = "QueueFull"
	ReasonNodeLost       = "NodeLost"
	ReasonCompleted      = "Completed"
	ReasonError          = "Error"

	// The runner's (result.json).
	ReasonTimeout    = "Timeout"
	ReasonSignaled   = "Signaled"
	ReasonStartError = "StartError"

	// Kubernetes' (scheduler, kubelet, Job controller), kept as it words them.
	ReasonUnschedulable              = "Unschedulable"
	ReasonErrImagePull               = "ErrImagePull"
	ReasonImagePullBackOff           = "ImagePullBackOff"
	ReasonErrImageNeverPull          = "ErrImageNeverPull"
	ReasonInvalidImageName           = "InvalidImageName"
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonContainerCreating          = "ContainerCreating"
	ReasonOOMKilled                  = "OOMKilled"
	ReasonEvicted                    = "Evicted"
	ReasonDeadlineExceeded           = "DeadlineExceeded"
	ReasonBackoffLimitExceeded       = "BackoffLimitExceeded"
	// The API server's refusals of a Job or of its pods (the Job
	// controller's FailedCreate Events), sorted by the agent.
	ReasonQuotaExceeded       = "QuotaExceeded"
	ReasonPodSecurityRejected = "PodSecurityRejected"
	ReasonAdmissionRejected   = "AdmissionRejected"
	ReasonFailedCreate        = "FailedCreate"
)

// Source is who gives a reason.
type Source string

// Sources of reasons.
const (
	SourceAgent      Source = "agent"
	SourceRunner     Source = "runner"
	SourceKubernetes Source = "kubernetes"
)

// ReasonInfo describes one reason.
type ReasonInfo struct {
	Name   string
	Source Source
	// Problem: something to fix (a Warning Event); otherwise progress or
	// a normal end.
	Problem bool
	// Blocks: a container waiting for this reason keeps the run Pending
	// under it (the kubelet's words for a pod that cannot start).
	Blocks bool
	// Means is one line for the user.
	Means string
}

var reasons = []ReasonInfo{
	{ReasonInvalidRequest, SourceAgent, true, false, "the request file is not a valid run request (the message names the field)"},
	{ReasonInvalidConfig, SourceAgent, true, false, "the executor config is invalid, or the API server refused the Job built from it"},
	{ReasonForbidden, SourceAgent, true, false, "the agent's service account lacks a permission (the message names verb, resource and namespace)"},
	{ReasonPolicyDenied, SourceAgent, true, false, "the config asks for more than the Mage container has (namespace, service account, privileges)"},
	{ReasonNameCollision, SourceAgent, true, false, "a Job of that name exists for another run"},
	{ReasonJobDeleted, SourceAgent, true, false, "the run's Job was deleted before the run finished"},
	{ReasonNodeLost, SourceAgent, true, false, "the pod's node stopped reporting; Kubernetes evicted the pod after the agent's --node-lost-after"},
	{ReasonCancelled, SourceAgent, false, false, "cancelled (Mage, `agent cancel`, or a cancel file); the Job was deleted"},
	{ReasonStartTimeout, SourceAgent, true, false, "the run did not start within its start timeout; the message says what it waited for"},
	{ReasonQueueFull, SourceAgent, true, false, "the agent's queue of waiting runs was full (--max-queued or --max-queued-bytes); the message names the cap"},
	{ReasonCompleted, SourceAgent, false, false, "the block command exited 0"},
	{ReasonError, SourceAgent, true, false, "the block command exited non-zero, or an error the others do not name"},
	{ReasonTimeout, SourceRunner, true, false, "the runner stopped the command at its timeout"},
	{ReasonSignaled, SourceRunner, true, false, "the command was killed by a signal"},
	{ReasonStartError, SourceRunner, true, false, "the runner could not start the command"},
	{ReasonUnschedulable, SourceKubernetes, true, false, "no node fits the pod (the scheduler's message says why)"},
	{ReasonErrImagePull, SourceKubernetes, true, true, "the image cannot be pulled (the registry's error)"},
	{ReasonImagePullBackOff, SourceKubernetes, true, true, "the kubelet waits before pulling the image again"},
	{ReasonErrImageNeverPull, SourceKubernetes, true, true, "the image is not on the node and imagePullPolicy is Never"},
	{ReasonInvalidImageName, SourceKubernetes, true, true, "the image name is not valid"},
	{ReasonCreateContainerConfigError, SourceKubernetes, true, true, "the container's config refers to something missing (a Secret, a ConfigMap key)"},
	{ReasonCreateContainerError, SourceKubernetes, true, true, "the container runtime could not create the container"},
	{ReasonRunContainerError, SourceKubernetes, true, true, "the container runtime could not start the container"},
	{ReasonCrashLoopBackOff, SourceKubernetes, true, false, "a container keeps exiting and the kubelet waits before restarting it"},
	{ReasonContainerCreating, SourceKubernetes, false, false, "scheduled; the kubelet is starting the containers"},
	{ReasonOOMKilled, SourceKubernetes, true, false, "the container was killed for exceeding its memory limit"},
	{ReasonEvicted, SourceKubernetes, true, false, "the kubelet evicted the pod (node pressure), or Kubernetes deleted it (a drain, preemption, a NoExecute taint): the message says which"},
	{ReasonDeadlineExceeded, SourceKubernetes, true, false, "the Job ran past active_deadline_seconds"},
	{ReasonBackoffLimitExceeded, SourceKubernetes, true, false, "every attempt failed (backoff_limit)"},
	{ReasonQuotaExceeded, SourceKubernetes, true, false, "a ResourceQuota refused the Job or its pod (the API's message names it); a quota of zero fails the run at once, one that may free up after 5 minutes or the start timeout, whichever comes first"},
	{ReasonPodSecurityRejected, SourceKubernetes, true, false, "the namespace's PodSecurity level refused the Job's pod (the API's message says which rule); the run fails at once"},
	{ReasonAdmissionRejected, SourceKubernetes, true, false, "an admission webhook or policy (LimitRange, ValidatingAdmissionPolicy) refused the Job or its pod; the run fails at once"},
	{ReasonFailedCreate, SourceKubernetes, true, false, "the Job controller could not create the pod, for a reason that may pass (the API's message); the start timeout applies"},
}

// Reasons lists every reason, the agent's first.
func Reasons() []ReasonInfo { return append([]ReasonInfo(nil), reasons...) }

// LookupReason describes name, if it is one of the vocabulary's.
func LookupReason(name string) (ReasonInfo, bool) {
	for _, r := range reasons {
		if r.Name == name {
			return r, true
		}
	}
	return ReasonInfo{}, false
}

// IsProblem reports whether a run waiting or ending for reason has
// something to fix.
func IsProblem(reason string) bool {
	r, ok := LookupReason(reason)
	return ok && r.Problem
}

// Blocks reports whether a container waiting for reason cannot start
// without a fix or a retry of Kubernetes' own (the run is Pending under it).
func Blocks(reason string) bool {
	r, ok := LookupReason(reason)
	return ok && r.Blocks
}
