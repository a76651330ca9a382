// Package otlp is the agent's trace exporter: configured from the OTEL_*
// environment, it sends each run's spans (telemetry.TracesData) over OTLP
// gRPC or HTTP. Kept out of package telemetry so the runner, which only
// writes span files, does not link the OpenTelemetry SDK and gRPC.
package otlp

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/magekube/magekube/pkg/telemetry"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Tracer exports the spans of runs over OTLP. magekube builds each span
// itself, with ids and timestamps taken from the run's files, because a
// run outlives any one agent process: whichever agent sees the run end
// exports the whole trace once. It is configured only by the standard
// OTEL_* environment variables; with no endpoint set, New returns nil and
// nothing is sampled, built or sent.
type Tracer struct {
	exporter sdktrace.SpanExporter
	resource *resource.Resource
	sampler  sdktrace.Sampler
}

// NewTracer reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL (grpc,
// http/protobuf), _HEADERS, _TIMEOUT, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_SDK_DISABLED
// and OTEL_TRACES_EXPORTER. service is the default service.name.
func NewTracer(ctx context.Context, service string, lookup func(string) (string, bool)) (*Tracer, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") || get("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil
	}
	if get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	if e := get("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: magekube exports traces with otlp (or none)", e)
	}
	sampler, err := samplerFromEnv(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	exp, err := exporterFromEnv(ctx, get)
	if err != nil {
		return nil, err
	}
	res, err := resourceFromEnv(ctx, get, service)
	if err != nil {
		return nil, err
	}
	return &Tracer{exporter: exp, resource: res, sampler: sampler}, nil
}

// exporterFromEnv builds the OTLP exporter the environment names. The
// exporters read the process environment themselves; magekube passes
// what get says instead, so both agree in every case.
func exporterFromEnv(ctx context.Context, get func(string) string) (sdktrace.SpanExporter, error) {
	proto := firstOf(get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), get("OTEL_EXPORTER_OTLP_PROTOCOL"))
	endpoint := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	headers, err := parseHeaders("OTEL_EXPORTER_OTLP_HEADERS", firstOf(get("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), get("OTEL_EXPORTER_OTLP_HEADERS")))
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if v := firstOf(get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), get("OTEL_EXPORTER_OTLP_TIMEOUT")); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT=%q: want milliseconds", v)
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	var exp sdktrace.SpanExporter
	switch proto {
	case "", "http/protobuf":
		if endpoint == "" { // the generic endpoint gets the signal's path
			endpoint = strings.TrimSuffix(get("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
		}
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint), otlptracehttp.WithHeaders(headers), otlptracehttp.WithTimeout(timeout))
	case "grpc":
		if endpoint == "" {
			endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint), otlptracegrpc.WithHeaders(headers), otlptracegrpc.WithTimeout(timeout))
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// resourceFromEnv is the spans' resource: OTEL_RESOURCE_ATTRIBUTES, and
// service.name from OTEL_SERVICE_NAME, else those attributes, else service.
func resourceFromEnv(ctx context.Context, get func(string) string, service string) (*resource.Resource, error) {
	attrs, err := parseHeaders("OTEL_RESOURCE_ATTRIBUTES", get("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, err
	}
	if _, ok := attrs["service.name"]; !ok {
		attrs["service.name"] = service
	}
	if name := get("OTEL_SERVICE_NAME"); name != "" {
		attrs["service.name"] = name
	}
	kvs := make([]attribute.KeyValue, 0, len(attrs))
	for k, v := range attrs {
		kvs = append(kvs, attribute.String(k, v))
	}
	res, err := resource.New(ctx, resource.WithAttributes(kvs...), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	return res, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseHeaders reads the variable name's value s (OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_RESOURCE_ATTRIBUTES): key=value pairs, comma-separated, values
// URL-encoded.
func parseHeaders(name, s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", name, pair)
		}
		dv, err := url.QueryUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", name, k, err)
		}
		out[k] = dv
	}
	return out, nil
}

// samplerFromEnv implements the sampler names of the OpenTelemetry
// environment specification; the default is parentbased_always_on.
func samplerFromEnv(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio between 0 and 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// NewRun picks the span context of a run's root span: a child of parent
// when the request carried a traceparent, else a new trace, sampled as
// OTEL_TRACES_SAMPLER says. A nil Tracer samples nothing.
func (t *Tracer) NewRun(parent *telemetry.SpanContext, name string) telemetry.SpanContext {
	sc := telemetry.SpanContext{TraceID: telemetry.NewTraceID(), SpanID: telemetry.NewSpanID()}
	var p trace.SpanContext
	if parent != nil {
		sc.TraceID = parent.TraceID
		p = otelContext(*parent, true)
	}
	if t == nil {
		return sc
	}
	res := t.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: trace.ContextWithSpanContext(context.Background(), p),
		TraceID:       trace.TraceID(sc.TraceID), Name: name, Kind: trace.SpanKindInternal,
	})
	sc.Sampled = res.Decision == sdktrace.RecordAndSample
	return sc
}

// Export sends spans, each export request as its own resource; it blocks
// until the exporter has answered or ctx ends.
func (t *Tracer) Export(ctx context.Context, data ...telemetry.TracesData) error {
	var spans []sdktrace.ReadOnlySpan
	for _, td := range data {
		for _, rs := range td.ResourceSpans {
			res, err := resource.Merge(t.resource, resource.NewSchemaless(attributes(rs.Resource.Attributes)...))
			if err != nil {
				res = t.resource
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					stub, err := stubOf(s)
					if err != nil {
						return err
					}
					stub.Resource = res
					stub.InstrumentationScope = instrumentation.Scope{Name: ss.Scope.Name, Version: ss.Scope.Version}
					spans = append(spans, stub.Snapshot())
				}
			}
		}
	}
	if len(spans) == 0 {
		return nil
	}
	return t.exporter.ExportSpans(ctx, spans)
}

// Shutdown flushes and closes the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.exporter.Shutdown(ctx)
}

func otelContext(sc telemetry.SpanContext, remote bool) trace.SpanContext {
	var flags trace.TraceFlags
	if sc.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID(sc.TraceID), SpanID: trace.SpanID(sc.SpanID), TraceFlags: flags, Remote: remote,
	})
}

func stubOf(s telemetry.Span) (tracetest.SpanStub, error) {
	var stub tracetest.SpanStub
	sc, err := s.Context()
	if err != nil {
		return stub, err
	}
	stub.SpanContext = otelContext(sc, false)
	if s.ParentSpanID != "" {
		parent := sc
		if _, err := hex.Decode(parent.SpanID[:], []byte(s.ParentSpanID)); err == nil {
			stub.Parent = otelContext(parent, true)
		}
	}
	stub.Name = s.Name
	stub.SpanKind = trace.SpanKind(s.Kind)
	if stub.StartTime, err = telemetry.ParseUnixNano(s.StartTimeUnixNano); err != nil {
		return stub, err
	}
	if stub.EndTime, err = telemetry.ParseUnixNano(s.EndTimeUnixNano); err != nil {
		return stub, err
	}
	stub.Attributes = attributes(s.Attributes)
	for _, e := range s.Events {
		at, _ := telemetry.ParseUnixNano(e.TimeUnixNano)
		stub.Events = append(stub.Events, sdktrace.Event{Name: e.Name, Time: at, Attributes: attributes(e.Attributes)})
	}
	switch s.Status.Code {
	case telemetry.StatusOK:
		stub.Status = sdktrace.Status{Code: codes.Ok}
	case telemetry.StatusError:
		stub.Status = sdktrace.Status{Code: codes.Error, Description: s.Status.Message}
	}
	return stub, nil
}

func attributes(kvs []telemetry.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		v := kv.Value
		switch {
		case v.StringValue != nil:
			out = append(out, attribute.String(kv.Key, *v.StringValue))
		case v.IntValue != nil:
			n, _ := strconv.ParseInt(*v.IntValue, 10, 64)
			out = append(out, attribute.Int64(kv.Key, n))
		case v.BoolValue != nil:
			out = append(out, attribute.Bool(kv.Key, *v.BoolValue))
		}
	}
	return out
}
