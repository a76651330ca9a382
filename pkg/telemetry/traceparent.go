package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TraceID and SpanID are W3C trace-context identifiers.
type (
	TraceID [16]byte
	SpanID  [8]byte
)

func (t TraceID) String() string { return hex.EncodeToString(t[:]) }
func (s SpanID) String() string  { return hex.EncodeToString(s[:]) }

// IsValid reports whether t is not all zeros (W3C forbids that value).
func (t TraceID) IsValid() bool { return t != TraceID{} }

// IsValid reports whether s is not all zeros.
func (s SpanID) IsValid() bool { return s != SpanID{} }

// SpanContext is the part of a span that crosses process boundaries.
type SpanContext struct {
	TraceID TraceID
	SpanID  SpanID
	Sampled bool
}

// ParseTraceParent reads a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>").
func ParseTraceParent(s string) (SpanContext, error) {
	var sc SpanContext
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" {
		return sc, fmt.Errorf("traceparent %q: want 00-<trace-id>-<span-id>-<flags>", s)
	}
	if parts[0] == "00" && len(parts) != 4 {
		return sc, fmt.Errorf("traceparent %q: version 00 has four fields", s)
	}
	if err := decodeHex(sc.TraceID[:], parts[1]); err != nil || !sc.TraceID.IsValid() {
		return sc, fmt.Errorf("traceparent %q: bad trace id", s)
	}
	if err := decodeHex(sc.SpanID[:], parts[2]); err != nil || !sc.SpanID.IsValid() {
		return sc, fmt.Errorf("traceparent %q: bad parent id", s)
	}
	var flags [1]byte
	if err := decodeHex(flags[:], parts[3]); err != nil {
		return sc, fmt.Errorf("traceparent %q: bad flags", s)
	}
	sc.Sampled = flags[0]&1 == 1
	return sc, nil
}

func decodeHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) || strings.ToLower(s) != s {
		return errors.New("wrong length or case")
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// Context decodes the span's hex trace and span ids (sampled).
func (s Span) Context() (SpanContext, error) {
	var sc SpanContext
	if err := decodeHex(sc.TraceID[:], s.TraceID); err != nil {
		return sc, fmt.Errorf("span %q: trace id: %w", s.Name, err)
	}
	if err := decodeHex(sc.SpanID[:], s.SpanID); err != nil {
		return sc, fmt.Errorf("span %q: span id: %w", s.Name, err)
	}
	sc.Sampled = true
	return sc, nil
}

// TraceParent formats sc as a W3C traceparent value.
func (sc SpanContext) TraceParent() string {
	flags := "00"
	if sc.Sampled {
		flags = "01"
	}
	return "00-" + sc.TraceID.String() + "-" + sc.SpanID.String() + "-" + flags
}

// NewTraceID returns a random trace id.
func NewTraceID() TraceID {
	var t TraceID
	for !t.IsValid() {
		_, _ = rand.Read(t[:])
	}
	return t
}

// NewSpanID returns a random span id.
func NewSpanID() SpanID {
	var s SpanID
	for !s.IsValid() {
		_, _ = rand.Read(s[:])
	}
	return s
}
