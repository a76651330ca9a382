package protocol

import "time"

// Phase is where a run is in its life. The last three are terminal.
type Phase string

// Phases in the order a run normally passes them.
const (
	PhaseQueued     Phase = "Queued"
	PhaseDispatched Phase = "Dispatched"
	PhasePending    Phase = "Pending"
	PhaseRunning    Phase = "Running"
	PhaseSucceeded  Phase = "Succeeded"
	PhaseFailed     Phase = "Failed"
	PhaseCancelled  Phase = "Cancelled"
)

// Terminal reports whether no later transition can follow p.
func (p Phase) Terminal() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// Status is runs/<id>/status.json, written only by the agent.
type Status struct {
	APIVersion string `json:"apiVersion"`
	ID         string `json:"id"`
	Phase      Phase  `json:"phase"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Job        string `json:"job,omitempty"`
	Pod        string `json:"pod,omitempty"`
	Node       string `json:"node,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
	TraceID    string `json:"trace_id,omitempty"`
	// Agent is the agent pod that tracks the run; another agent adopts it
	// only once that pod is gone.
	Agent string `json:"agent,omitempty"`
	// TraceParent names the run's root span (W3C); the Job's TRACEPARENT.
	TraceParent string     `json:"traceparent,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// Result is runs/<id>/result.json, written only by the runner, once per
// attempt (the last attempt's result stays).
type Result struct {
	ExitCode        int       `json:"exit_code"`
	Signal          *string   `json:"signal"`
	Reason          string    `json:"reason"`
	Message         string    `json:"message,omitempty"`
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Pod             string    `json:"pod,omitempty"`
	Attempt         int       `json:"attempt"`
	TraceID         string    `json:"trace_id,omitempty"`
	// Seal proves the run's own pod wrote the result (seal.go).
	Seal string `json:"seal,omitempty"`
}
