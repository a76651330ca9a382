package telemetry

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The types below are the OTLP/JSON encoding of an ExportTraceServiceRequest
// (opentelemetry-proto, JSON mapping: ids in hex, 64-bit integers as
// strings). A span file holds one such request, so the agent can forward it
// unchanged to any OTLP/HTTP endpoint (POST /v1/traces).

// TracesData is one OTLP/JSON export request.
type TracesData struct {
	ResourceSpans []ResourceSpans `json:"resourceSpans"`
}

// ResourceSpans groups spans by the resource that produced them.
type ResourceSpans struct {
	Resource   Resource     `json:"resource"`
	ScopeSpans []ScopeSpans `json:"scopeSpans"`
}

// Resource describes the producer (service.name, k8s.pod.name, …).
type Resource struct {
	Attributes []KeyValue `json:"attributes,omitempty"`
}

// ScopeSpans groups spans by instrumentation scope.
type ScopeSpans struct {
	Scope Scope  `json:"scope"`
	Spans []Span `json:"spans"`
}

// Scope names the instrumentation library.
type Scope struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Span is one OTLP span.
type Span struct {
	TraceID           string     `json:"traceId"`
	SpanID            string     `json:"spanId"`
	ParentSpanID      string     `json:"parentSpanId,omitempty"`
	Name              string     `json:"name"`
	Kind              int        `json:"kind"`
	StartTimeUnixNano string     `json:"startTimeUnixNano"`
	EndTimeUnixNano   string     `json:"endTimeUnixNano"`
	Attributes        []KeyValue `json:"attributes,omitempty"`
	Events            []Event    `json:"events,omitempty"`
	Status            Status     `json:"status"`
}

// Event is a timestamped annotation on a span.
type Event struct {
	TimeUnixNano string     `json:"timeUnixNano"`
	Name         string     `json:"name"`
	Attributes   []KeyValue `json:"attributes,omitempty"`
}

// Status codes of OTLP spans.
const (
	StatusUnset = 0
	StatusOK    = 1
	StatusError = 2
)

// Span kinds of OTLP spans.
const (
	KindInternal = 1
	KindServer   = 2
	KindClient   = 3
)

// Status is a span's outcome.
type Status struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// KeyValue is one attribute.
type KeyValue struct {
	Key   string   `json:"key"`
	Value AnyValue `json:"value"`
}

// AnyValue holds exactly one of its fields.
type AnyValue struct {
	StringValue *string `json:"stringValue,omitempty"`
	IntValue    *string `json:"intValue,omitempty"`
	BoolValue   *bool   `json:"boolValue,omitempty"`
}

// String is a string attribute.
func String(k, v string) KeyValue { return KeyValue{Key: k, Value: AnyValue{StringValue: &v}} }

// Int is an integer attribute.
func Int(k string, v int64) KeyValue {
	s := strconv.FormatInt(v, 10)
	return KeyValue{Key: k, Value: AnyValue{IntValue: &s}}
}

// Bool is a boolean attribute.
func Bool(k string, v bool) KeyValue { return KeyValue{Key: k, Value: AnyValue{BoolValue: &v}} }

// UnixNano formats t for a span.
func UnixNano(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// ParseUnixNano reads a span timestamp.
func ParseUnixNano(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return time.Unix(0, n), nil
}

// SpanFile is one span of one service, as a whole export request.
func SpanFile(service string, resource []KeyValue, span Span) TracesData {
	attrs := append([]KeyValue{String("service.name", service)}, resource...)
	return TracesData{ResourceSpans: []ResourceSpans{{
		Resource:   Resource{Attributes: attrs},
		ScopeSpans: []ScopeSpans{{Scope: Scope{Name: "github.com/magekube/magekube"}, Spans: []Span{span}}},
	}}}
}

// DecodeSpanFile reads a span file and checks its ids.
func DecodeSpanFile(data []byte) (TracesData, error) {
	var td TracesData
	if err := json.Unmarshal(data, &td); err != nil {
		return td, fmt.Errorf("decode span file: %w", err)
	}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				var t TraceID
				var id SpanID
				if decodeHex(t[:], s.TraceID) != nil || decodeHex(id[:], s.SpanID) != nil {
					return td, fmt.Errorf("decode span file: span %q has bad ids", s.Name)
				}
			}
		}
	}
	return td, nil
}
