package dispatch

import (
	"fmt"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// Facts is everything the agent knows of one run when it judges it: what
// the caches and the run directory say (Observation), and what the agent
// itself did or confirmed. The loop gathers facts (facts in refresh.go);
// Judge alone decides.
type Facts struct {
	Observation
	// Status is the run's last written status.
	Status protocol.Status
	// Created: the run has a Job (created or adopted); false while it is
	// queued.
	Created bool
	// JobGone: the Job is missing from the cache and the API server
	// confirmed it does not exist. Missing but unconfirmed is no fact.
	JobGone bool
	// Blind: the caches of the Job's namespace are not synced yet, so
	// nothing is known of the Job.
	Blind bool
	// Stop is set once the agent decided to delete the run's Job: how the
	// run ends when the deletion shows.
	Stop *Stop
	// Waited is how long the run has waited to start (since its Job was
	// created, or since this agent adopted it); StartTimeout its limit (0:
	// none).
	Waited, StartTimeout time.Duration
}

// DefaultStartTimeout is how long a run may wait to start: long enough for
// a cluster autoscaler to add a node (minutes) and that node to pull a
// multi-gigabyte Mage image, short enough that a run that can never be
// scheduled fails the same hour instead of waiting forever.
const DefaultStartTimeout = 15 * time.Minute

// Stop is how a run whose Job the agent deletes ends: cancelled by the
// user, or failed for its start timeout.
type Stop struct {
	Phase   protocol.Phase
	Reason  string
	Message string
}

// cancelled is the Stop of a user's cancel.
var cancelled = Stop{Phase: protocol.PhaseCancelled, Reason: protocol.ReasonCancelled, Message: "cancelled; the Job and its pods were deleted"}

// Action is what the loop does with a Verdict.
type Action int

const (
	// Update writes the verdict as the run's status (when it changed); a
	// terminal phase ends the run.
	Update Action = iota
	// Wait: nothing to write until more is known.
	Wait
	// DeleteJob deletes the run's Job; the run ends as Verdict.Stop once
	// the deletion shows.
	DeleteJob
)

// Judge decides a run's status from its facts: every terminal decision
// (succeeded, failed, cancelled, Job deleted, start timeout) is made here.
func Judge(f Facts) Verdict {
	succeeded := f.Result != nil && f.Result.ExitCode == 0
	switch {
	case !f.Created:
		if f.Stop != nil {
			return Verdict{Phase: f.Stop.Phase, Reason: f.Stop.Reason, Message: "cancelled before a Job was created"}
		}
		return Verdict{Action: Wait}
	case f.Blind:
		return Verdict{Action: Wait}
	case f.Job == nil && !succeeded:
		if !f.JobGone {
			return Verdict{Action: Wait} // the cache may lag a fresh create
		}
		return jobGone(f)
	case f.Stop != nil && f.Job != nil:
		return Verdict{Action: Wait} // the deletion has not shown yet
	}
	v := judgeObserved(f.Observation)
	if f.Refusal != nil && f.Job != nil && len(f.Pods) == 0 {
		if stop := refused(f); stop != nil {
			return Verdict{Action: DeleteJob, Stop: stop}
		}
	}
	waiting := v.Phase == protocol.PhasePending || v.Phase == protocol.PhaseDispatched
	if waiting && f.StartTimeout > 0 && f.Waited >= f.StartTimeout {
		return startTimeout(f, v)
	}
	return v
}

// refused ends a run whose pods the API server refuses: at once when the
// refusal cannot pass by itself (PodSecurity, a webhook, a quota of
// zero), after quotaWait when a quota may free up; nil while it waits.
func refused(f Facts) *Stop {
	reason, canPass := classify(f.Refusal.Message)
	switch {
	case !canPass:
	case reason == protocol.ReasonQuotaExceeded && f.Waited >= min(quotaWait, orForever(f.StartTimeout)):
	default:
		return nil
	}
	return &Stop{Phase: protocol.PhaseFailed, Reason: reason,
		Message: "the API server refused the Job's pod: " + f.Refusal.Message + "; its Job was deleted"}
}

// orForever is a timeout, with 0 (none) as the longest.
func orForever(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return d
}

// jobGone ends a run whose Job no longer exists: as the agent's Stop
// when it deleted the Job, else failed.
func jobGone(f Facts) Verdict {
	v := Verdict{Phase: protocol.PhaseFailed, Pod: f.Status.Pod, Node: f.Status.Node, Attempts: f.Status.Attempts}
	job := "job " + f.Status.Namespace + "/" + f.Status.Job
	switch {
	case f.Stop != nil:
		v.Phase, v.Reason, v.Message = f.Stop.Phase, f.Stop.Reason, f.Stop.Message
	case f.Result != nil:
		code := f.Result.ExitCode
		v.Reason, v.Message, v.ExitCode = f.Result.Reason, joinMessage(f.Result.Message, job+" is gone"), &code
	default:
		v.Reason, v.Message = protocol.ReasonJobDeleted, job+" was deleted before the run finished"
	}
	return v
}

// startTimeout fails a run still waiting to start (no pod, unschedulable,
// pulling its image) past its limit, with the last reason it waited for.
func startTimeout(f Facts, v Verdict) Verdict {
	why := "no pod yet"
	if v.Reason != "" {
		why = joinMessage(v.Reason + ": " + v.Message)
	}
	return Verdict{Action: DeleteJob, Stop: &Stop{
		Phase:  protocol.PhaseFailed,
		Reason: protocol.ReasonStartTimeout,
		Message: fmt.Sprintf("the run did not start within %s (start timeout; job.start_timeout_seconds or --start-timeout); it was waiting: %s; its Job was deleted",
			f.StartTimeout, why),
	}}
}
