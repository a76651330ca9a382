package telemetry

import "time"

// RunTimeline is what the agent knows of a run when it ends; RunSpans
// turns it into the run's trace. A zero time leaves its span out.
type RunTimeline struct {
	// Root is the run span; Parent is the caller's span when the request
	// carried a traceparent.
	Root   SpanContext
	Parent SpanID
	// Name is "<pipeline>/<block>" (or the pipeline for pipeline runs).
	Name       string
	Attributes []KeyValue
	// Seen: request noticed; Claimed: moved into runs/<id>; JobCreated;
	// Scheduled: pod bound to a node; Running: container started; Done:
	// the block's command ended (runner result or container state); End:
	// terminal status written.
	Seen, Claimed, JobCreated, Scheduled, Running, Done, End time.Time
	// DispatchEvents are create retries; PendingEvents the reasons a pod
	// waited for (Unschedulable, ImagePullBackOff, …).
	DispatchEvents, PendingEvents []TimedEvent
	Failed                        bool
	Reason, Message               string
}

// TimedEvent is a span event.
type TimedEvent struct {
	Time    time.Time
	Name    string
	Message string
}

// RunSpans is the agent's part of a run's trace: the root span and its
// children claim, dispatch, pending, start and finalize. The runner's
// runner.exec span, a child of the root through TRACEPARENT, comes from
// its span file. The spans carry no resource: the exporting agent's
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) applies.
func RunSpans(tl RunTimeline) TracesData {
	root := Span{
		TraceID: tl.Root.TraceID.String(), SpanID: tl.Root.SpanID.String(),
		Name: tl.Name, Kind: KindServer,
		StartTimeUnixNano: UnixNano(tl.Seen), EndTimeUnixNano: UnixNano(tl.End),
		Attributes: append(append([]KeyValue{}, tl.Attributes...), String("magekube.reason", tl.Reason)),
		Status:     Status{Code: StatusOK},
	}
	if tl.Parent.IsValid() {
		root.ParentSpanID = tl.Parent.String()
	}
	if tl.Failed {
		root.Status = Status{Code: StatusError, Message: tl.Reason + ": " + tl.Message}
	}
	spans := []Span{root}
	child := func(name string, start, end time.Time, events []TimedEvent) {
		if start.IsZero() || end.IsZero() {
			return
		}
		if end.Before(start) {
			end = start
		}
		s := Span{
			TraceID: root.TraceID, SpanID: NewSpanID().String(), ParentSpanID: root.SpanID,
			Name: name, Kind: KindInternal,
			StartTimeUnixNano: UnixNano(start), EndTimeUnixNano: UnixNano(end),
			Attributes: tl.Attributes,
		}
		for _, e := range events {
			ev := Event{TimeUnixNano: UnixNano(e.Time), Name: e.Name}
			if e.Message != "" {
				ev.Attributes = []KeyValue{String("message", e.Message)}
			}
			s.Events = append(s.Events, ev)
		}
		spans = append(spans, s)
	}
	child("claim", tl.Seen, tl.Claimed, nil)
	child("dispatch", tl.Claimed, tl.JobCreated, tl.DispatchEvents)
	pendingEnd := tl.Scheduled
	if pendingEnd.IsZero() {
		pendingEnd = tl.Running
	}
	if pendingEnd.IsZero() && tl.Failed {
		pendingEnd = tl.Done // never started: pending until it failed
	}
	child("pending", tl.JobCreated, pendingEnd, tl.PendingEvents)
	child("start", tl.Scheduled, tl.Running, nil)
	child("finalize", tl.Done, tl.End, nil)
	// No resource attributes: the exporting agent's resource applies.
	return TracesData{ResourceSpans: []ResourceSpans{{
		ScopeSpans: []ScopeSpans{{Scope: Scope{Name: "github.com/magekube/magekube"}, Spans: spans}},
	}}}
}
