package otlp

import (
	"context"
	"github.com/magekube/magekube/pkg/telemetry"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func memTracer(t *testing.T) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	s, err := samplerFromEnv("", "")
	if err != nil {
		t.Fatal(err)
	}
	return &Tracer{exporter: exp, resource: resource.NewSchemaless(), sampler: s}, exp
}

func TestNewTracerOffWithoutEndpoint(t *testing.T) {
	env := map[string]string{"OTEL_SERVICE_NAME": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tr, err := NewTracer(context.Background(), "magekube-agent", lookup)
	if tr != nil || err != nil {
		t.Fatalf("no endpoint: got %v, %v", tr, err)
	}
	if sc := tr.NewRun(nil, "p/b"); sc.Sampled || !sc.TraceID.IsValid() {
		t.Errorf("nil tracer: %+v", sc)
	}
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
	for k, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL": `OTEL_EXPORTER_OTLP_PROTOCOL="thrift": want grpc or http/protobuf`,
		"OTEL_TRACES_SAMPLER":         `OTEL_TRACES_SAMPLER="thrift": want always_on`,
		"OTEL_TRACES_EXPORTER":        `OTEL_TRACES_EXPORTER="thrift": magekube exports traces with otlp`,
		"OTEL_EXPORTER_OTLP_HEADERS":  `OTEL_EXPORTER_OTLP_HEADERS: "thrift" is not key=value`,
		"OTEL_EXPORTER_OTLP_TIMEOUT":  `OTEL_EXPORTER_OTLP_TIMEOUT="thrift": want milliseconds`,
	} {
		env[k] = "thrift"
		_, err := NewTracer(context.Background(), "magekube-agent", lookup)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", k, err, want)
		}
		delete(env, k)
	}
	tr, err = NewTracer(context.Background(), "magekube-agent", lookup)
	if err != nil || tr == nil {
		t.Fatalf("with endpoint: %v, %v", tr, err)
	}
	_ = tr.Shutdown(context.Background())
}

func TestSampler(t *testing.T) {
	tr, _ := memTracer(t)
	parent := telemetry.SpanContext{TraceID: telemetry.NewTraceID(), SpanID: telemetry.NewSpanID(), Sampled: false}
	if sc := tr.NewRun(&parent, "p/b"); sc.Sampled || sc.TraceID != parent.TraceID {
		t.Errorf("unsampled parent: %+v", sc)
	}
	parent.Sampled = true
	if sc := tr.NewRun(&parent, "p/b"); !sc.Sampled || sc.TraceID != parent.TraceID {
		t.Errorf("sampled parent: %+v", sc)
	}
	if _, err := samplerFromEnv("traceidratio", "2"); err == nil {
		t.Error("ratio 2 accepted")
	}
}

// TestRunTrace: the agent's spans and a runner span file export as one
// tree under the run span, with the error status on failure.
func TestRunTrace(t *testing.T) {
	tr, exp := memTracer(t)
	root := tr.NewRun(nil, "etl/load")
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tl := telemetry.RunTimeline{
		Root: root, Name: "etl/load", Attributes: []telemetry.KeyValue{telemetry.String("k8s.job.name", "mage-etl-block-1")},
		Seen: at(0), Claimed: at(1), JobCreated: at(10), Scheduled: at(20), Running: at(500), Done: at(900), End: at(905),
		DispatchEvents: []telemetry.TimedEvent{{Time: at(5), Name: "create failed; retrying", Message: "429"}},
		PendingEvents:  []telemetry.TimedEvent{{Time: at(15), Name: "Unschedulable", Message: "0/2 nodes"}},
		Failed:         true, Reason: "Error", Message: "exit code 3",
	}
	runner := telemetry.SpanFile("magekube-runner", []telemetry.KeyValue{telemetry.String("k8s.pod.name", "p-1")}, telemetry.Span{
		TraceID: root.TraceID.String(), SpanID: telemetry.NewSpanID().String(), ParentSpanID: root.SpanID.String(),
		Name: "runner.exec", StartTimeUnixNano: telemetry.UnixNano(at(510)), EndTimeUnixNano: telemetry.UnixNano(at(890)),
		Status: telemetry.Status{Code: telemetry.StatusError, Message: "exit code 3"},
	})
	if err := tr.Export(context.Background(), telemetry.RunSpans(tl), runner); err != nil {
		t.Fatal(err)
	}
	got := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		got[s.Name] = s
		if s.SpanContext.TraceID() != [16]byte(root.TraceID) {
			t.Errorf("%s: other trace", s.Name)
		}
	}
	for _, name := range []string{"claim", "dispatch", "pending", "start", "finalize", "runner.exec"} {
		s, ok := got[name]
		if !ok {
			t.Errorf("no %s span", name)
			continue
		}
		if s.Parent.SpanID() != [8]byte(root.SpanID) {
			t.Errorf("%s: parent %s, want the run span", name, s.Parent.SpanID())
		}
	}
	run := got["etl/load"]
	if run.Status.Code != codes.Error || !strings.Contains(run.Status.Description, "exit code 3") || run.Parent.IsValid() {
		t.Errorf("run span: %+v", run)
	}
	if d := got["pending"]; len(d.Events) != 1 || d.Events[0].Name != "Unschedulable" || !d.EndTime.Equal(at(20)) {
		t.Errorf("pending span: %+v", d)
	}
	if d := got["dispatch"]; len(d.Events) != 1 {
		t.Errorf("dispatch span events: %+v", d.Events)
	}
	if svc, _ := got["runner.exec"].Resource.Set().Value("service.name"); svc.AsString() != "magekube-runner" {
		t.Errorf("runner span service %q", svc.AsString())
	}
	var _ sdktrace.SpanExporter = exp
}
