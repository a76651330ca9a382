package telemetry

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeSpanFile decodes whatever a pod may write as a span file: no
// input panics, and an accepted file has well-formed ids throughout.
func FuzzDecodeSpanFile(f *testing.F) {
	good, _ := json.Marshal(SpanFile("runner", nil, Span{TraceID: NewTraceID().String(), SpanID: NewSpanID().String(), Name: "runner.exec"}))
	f.Add(good)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"1"}]}]}]}`))
	f.Add([]byte(`{"resourceSpans":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := DecodeSpanFile(data)
		if err != nil {
			return
		}
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					var tid TraceID
					var sid SpanID
					if decodeHex(tid[:], s.TraceID) != nil || decodeHex(sid[:], s.SpanID) != nil {
						t.Fatalf("accepted a span with bad ids: %+v", s)
					}
				}
			}
		}
	})
}
