package dispatch

import (
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// Observation is what Kubernetes and the runner say about one run.
type Observation struct {
	Job    *batchv1.Job
	Pods   []*corev1.Pod
	Result *protocol.Result
	// Refusal is the API server's latest refusal of the Job's pods, when
	// none exists (refusal.go).
	Refusal *Refusal
}

// Verdict is Judge's decision: the run's status, and what to do with it.
type Verdict struct {
	Action   Action
	Stop     *Stop // with DeleteJob: how the run ends
	Phase    protocol.Phase
	Reason   string
	Message  string
	Pod      string
	Node     string
	Attempts int
	ExitCode *int
	// StartedAt is when the runner started the command, from its result.
	StartedAt time.Time
}

// judgeObserved derives the phase of a run whose Job exists from the Job,
// its pods and the runner's result. Success is final as soon as the runner reports exit 0; failure
// only when the Job itself failed, so a retry that succeeds is never
// reported as failed. Kubernetes' view wins over a missing or stale
// result: a container killed for memory is OOMKilled even though its
// runner wrote nothing.
func judgeObserved(o Observation) Verdict {
	v := Verdict{Phase: protocol.PhaseDispatched}
	pod := latest(o.Pods)
	if pod != nil {
		v.Pod, v.Node = pod.Name, pod.Spec.NodeName
	}
	v.Attempts = len(o.Pods)
	if o.Result != nil {
		v.StartedAt = o.Result.StartedAt
	}
	if o.Job != nil {
		if n := int(o.Job.Status.Failed + o.Job.Status.Succeeded + o.Job.Status.Active); n > v.Attempts {
			v.Attempts = n
		}
	}
	if r := o.Result; r != nil && r.ExitCode == 0 {
		code := 0
		v.Phase, v.Reason, v.ExitCode = protocol.PhaseSucceeded, protocol.ReasonCompleted, &code
		if r.Pod != "" {
			v.Pod = r.Pod
		}
		return v
	}
	if o.Job != nil {
		// The interim conditions are as final as the terminal ones, which
		// the Job controller adds only once every pod is gone: a pod on a
		// lost node can keep it waiting until the node returns.
		if c := condition(o.Job, batchv1.JobComplete, batchv1.JobSuccessCriteriaMet); c != nil {
			code := 0
			v.Phase, v.Reason, v.ExitCode = protocol.PhaseSucceeded, protocol.ReasonCompleted, &code
			return v
		}
		if c := condition(o.Job, batchv1.JobFailed, batchv1.JobFailureTarget); c != nil {
			return failed(v, c, pod, o.Result)
		}
	}
	if pod == nil {
		if o.Refusal != nil {
			v.Phase = protocol.PhasePending
			v.Reason, _ = classify(o.Refusal.Message)
			v.Message = "the API server refused the Job's pod: " + o.Refusal.Message
		}
		return v
	}
	return progress(v, pod)
}

// failed explains a failed Job: the pod's own story first (OOMKilled,
// Evicted, the command's exit code), then the Job's condition.
func failed(v Verdict, c *batchv1.JobCondition, pod *corev1.Pod, r *protocol.Result) Verdict {
	v.Phase, v.Reason, v.Message = protocol.PhaseFailed, c.Reason, c.Message
	if v.Reason == "" {
		v.Reason = protocol.ReasonError
	}
	if r != nil {
		code := r.ExitCode
		v.ExitCode = &code
		v.Message = joinMessage(r.Message, c.Message)
		switch r.Reason {
		case protocol.ReasonTimeout, protocol.ReasonOOMKilled:
			v.Reason = r.Reason // the runner saw it, whatever order Kubernetes reports in
		}
	}
	if pod == nil {
		return v
	}
	if pod.Status.Reason == protocol.ReasonEvicted {
		v.Reason, v.Message = protocol.ReasonEvicted, joinMessage(pod.Status.Message, c.Message)
		return v
	}
	if reason, msg, ok := disrupted(pod); ok {
		v.Reason, v.Message = reason, joinMessage(msg, c.Message)
		return v
	}
	if t := terminated(pod); t != nil {
		code := int(t.ExitCode)
		if v.ExitCode == nil {
			v.ExitCode = &code
		}
		if t.Reason == protocol.ReasonOOMKilled {
			v.Reason = protocol.ReasonOOMKilled
			v.Message = joinMessage(fmt.Sprintf("the container was killed for exceeding its memory limit (exit code %d)", t.ExitCode), c.Message)
		} else if r == nil && c.Reason == protocol.ReasonBackoffLimitExceeded {
			v.Message = joinMessage(fmt.Sprintf("the container exited with code %d (%s)", t.ExitCode, t.Reason), c.Message)
		}
	}
	return v
}

// progress places a run whose Job has not ended: pending for a reason
// Kubernetes gives (unschedulable, image pull), or running.
func progress(v Verdict, pod *corev1.Pod) Verdict {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
			v.Phase, v.Reason, v.Message = protocol.PhasePending, protocol.ReasonUnschedulable, cond.Message
			return v
		}
	}
	for _, s := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := s.State.Waiting; w != nil {
			if protocol.Blocks(w.Reason) {
				v.Phase, v.Reason, v.Message = protocol.PhasePending, w.Reason, fmt.Sprintf("container %s: %s", s.Name, w.Message)
				return v
			}
		}
	}
	switch pod.Status.Phase {
	case corev1.PodRunning:
		v.Phase = protocol.PhaseRunning
	case corev1.PodPending:
		v.Phase = protocol.PhasePending
		if pod.Spec.NodeName != "" {
			v.Reason, v.Message = protocol.ReasonContainerCreating, "scheduled on "+pod.Spec.NodeName+"; starting containers"
		}
	default: // a pod ended; the Job controller decides what comes next
		v.Phase = protocol.PhaseRunning
	}
	return v
}

// condition is the first of the Job's true conditions of the types, in
// their order.
func condition(job *batchv1.Job, types ...batchv1.JobConditionType) *batchv1.JobCondition {
	for _, t := range types {
		for i := range job.Status.Conditions {
			c := &job.Status.Conditions[i]
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return c
			}
		}
	}
	return nil
}

// disrupted explains a pod Kubernetes deleted (its DisruptionTarget
// condition): NodeLost when the taint manager evicted it from a node
// that stopped reporting (the node controller had marked the pod not
// ready and no container ended), Evicted with Kubernetes' words
// otherwise (a drain, preemption, another NoExecute taint).
func disrupted(pod *corev1.Pod) (reason, message string, ok bool) {
	var target, ready *corev1.PodCondition
	for i := range pod.Status.Conditions {
		switch c := &pod.Status.Conditions[i]; c.Type {
		case corev1.DisruptionTarget:
			target = c
		case corev1.PodReady:
			ready = c
		}
	}
	if target == nil || target.Status != corev1.ConditionTrue {
		return "", "", false
	}
	if target.Reason == taintManagerReason && ready != nil && ready.Status == corev1.ConditionFalse && terminated(pod) == nil {
		return protocol.ReasonNodeLost, fmt.Sprintf("node %s stopped reporting; Kubernetes evicted pod %s (%s: %s)",
			pod.Spec.NodeName, pod.Name, target.Reason, target.Message), true
	}
	return protocol.ReasonEvicted, fmt.Sprintf("Kubernetes deleted pod %s on node %s (%s: %s)", pod.Name, pod.Spec.NodeName, target.Reason, target.Message), true
}

// taintManagerReason is the DisruptionTarget reason of a pod evicted for
// a NoExecute taint it stopped tolerating.
const taintManagerReason = "DeletionByTaintManager"

// latest is the most recently created pod.
func latest(pods []*corev1.Pod) *corev1.Pod {
	if len(pods) == 0 {
		return nil
	}
	sorted := append([]*corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i].CreationTimestamp, sorted[j].CreationTimestamp
		if a.Equal(&b) {
			return sorted[i].Name < sorted[j].Name
		}
		return a.Before(&b)
	})
	return sorted[len(sorted)-1]
}

// terminated is the main container's terminated state, if any.
func terminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for _, s := range pod.Status.ContainerStatuses {
		if t := s.State.Terminated; t != nil {
			return t
		}
		if t := s.LastTerminationState.Terminated; t != nil {
			return t
		}
	}
	return nil
}

func joinMessage(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
