//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/magekube/magekube/pkg/dispatch"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry"
	"github.com/magekube/magekube/pkg/telemetry/metrics"
	"github.com/magekube/magekube/pkg/telemetry/otlp"
	"github.com/magekube/magekube/test/cluster"
)

// jaegerTrace is the part of Jaeger's /api/traces/<id> answer the test reads.
type jaegerTrace struct {
	Data []struct {
		Spans []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
			ProcessID string `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// TestTracesAndMetrics runs a block that succeeds and one that fails on
// real nodes with the agent exporting to a real Jaeger, then reads each
// trace back through Jaeger's HTTP API, and scrapes the agent's metrics.
func TestTracesAndMetrics(t *testing.T) {
	binDir := os.Getenv("MAGEKUBE_BIN_DIR")
	if binDir == "" {
		if os.Getenv("CI") == "true" && os.Getenv("MAGEKUBE_E2E_KUBECONFIG") == "" {
			t.Fatal("MAGEKUBE_BIN_DIR (with jaeger) is not set")
		}
		t.Skip("MAGEKUBE_BIN_DIR is not set: no Jaeger to export to")
	}
	jaeger, err := cluster.StartJaeger(t.Context(), binDir, t.TempDir(), cluster.JaegerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jaeger.Stop)
	otel := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.OTLPHTTP, "OTEL_SERVICE_NAME": "magekube-agent-e2e"}
	tracer, err := otlp.NewTracer(t.Context(), "magekube-agent", func(k string) (string, bool) { v, ok := otel[k]; return v, ok })
	if err != nil || tracer == nil {
		t.Fatalf("tracer: %v, %v", tracer, err)
	}
	metrics := metrics.NewMetrics("e2e")
	metrics.ObserveKubernetesAPI()

	layout := startAgent(t, "traces", "k8s_executor_config:\n  job_name_prefix: tr\n", func(o *dispatch.Options) {
		o.Tracer, o.Metrics = tracer, metrics
	})
	t.Cleanup(func() { _ = tracer.Shutdown(context.Background()) })

	caller := telemetry.SpanContext{TraceID: telemetry.NewTraceID(), SpanID: telemetry.NewSpanID(), Sampled: true}
	runs := map[string]string{
		"traced-ok":   `"command":["/usr/local/bin/block","--print","fine"],"traceparent":"` + caller.TraceParent() + `"`,
		"traced-fail": `"command":["/usr/local/bin/block","--exit","3"]`,
	}
	n := 300
	for id, extra := range runs {
		n++
		req := fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":"/home/src/p","pipeline_uuid":"etl","block_uuid":"load","block_run_id":%d,"trigger_name":"nightly",%s}`, id, n, extra)
		if _, err := protocol.Submit(layout, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	for id := range runs {
		t.Run(id, func(t *testing.T) {
			s := waitRun(t, layout, id, func(s protocol.Status) bool { return s.Phase.Terminal() })
			if id == "traced-ok" && s.TraceID != caller.TraceID.String() {
				t.Errorf("trace id %s, want the caller's %s", s.TraceID, caller.TraceID)
			}
			tr := waitTrace(t, jaeger.QueryURL, s.TraceID)
			checkTrace(t, tr, s, id == "traced-fail", caller)
		})
	}

	srv := httptest.NewServer(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`magekube_runs_total{phase="Succeeded",reason="Completed"} 1`,
		`magekube_runs_total{phase="Failed",reason="BackoffLimitExceeded"} 1`,
		`magekube_dispatch_latency_seconds_count 2`,
		`magekube_completion_notice_latency_seconds_count 2`,
		`magekube_trace_exports_total{result="ok"} 2`,
		`magekube_kube_api_requests_total{code="201",method="POST"}`,
		`magekube_inflight_runs 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// waitTrace polls Jaeger's query API until the trace has the runner's
// span (export is asynchronous, and Jaeger batches).
func waitTrace(t *testing.T, queryURL, traceID string) jaegerTrace {
	t.Helper()
	var tr jaegerTrace
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(queryURL + "/api/traces/" + traceID)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&tr)
			resp.Body.Close()
			if err == nil && len(tr.Data) == 1 {
				for _, s := range tr.Data[0].Spans {
					if s.OperationName == "runner.exec" {
						return tr
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("trace %s not in Jaeger with a runner.exec span: %+v", traceID, tr)
	return tr
}

func checkTrace(t *testing.T, tr jaegerTrace, s protocol.Status, failed bool, caller telemetry.SpanContext) {
	t.Helper()
	spans := tr.Data[0].Spans
	var rootID string
	byName := map[string]int{}
	tags := map[string]map[string]any{}
	for i, sp := range spans {
		byName[sp.OperationName] = i
		tags[sp.OperationName] = map[string]any{}
		for _, tg := range sp.Tags {
			tags[sp.OperationName][tg.Key] = tg.Value
		}
		if sp.OperationName == "etl/load" {
			rootID = sp.SpanID
		}
	}
	if rootID == "" {
		t.Fatalf("no run span etl/load in %v", byName)
	}
	for _, name := range []string{"claim", "dispatch", "pending", "start", "runner.exec", "finalize"} {
		i, ok := byName[name]
		if !ok {
			t.Errorf("no %s span (have %v)", name, byName)
			continue
		}
		if refs := spans[i].References; len(refs) != 1 || refs[0].SpanID != rootID {
			t.Errorf("%s: references %+v, want the run span %s", name, refs, rootID)
		}
	}
	if svc := tr.Data[0].Processes[spans[byName["runner.exec"]].ProcessID].ServiceName; svc != "magekube-runner" {
		t.Errorf("runner.exec from service %q", svc)
	}
	if svc := tr.Data[0].Processes[spans[byName["etl/load"]].ProcessID].ServiceName; svc != "magekube-agent-e2e" {
		t.Errorf("run span from service %q (OTEL_SERVICE_NAME not honoured)", svc)
	}
	run := tags["etl/load"]
	for k, want := range map[string]any{
		"k8s.namespace.name": s.Namespace, "k8s.job.name": s.Job, "k8s.pod.name": s.Pod, "k8s.node.name": s.Node,
		"mage.pipeline_uuid": "etl", "mage.block_uuid": "load", "mage.trigger_name": "nightly",
	} {
		if run[k] != want {
			t.Errorf("run span %s = %v, want %v", k, run[k], want)
		}
	}
	if _, ok := run["mage.block_run_id"]; !ok {
		t.Error("run span has no mage.block_run_id")
	}
	if failed && (run["error"] != true || run["otel.status_code"] != "ERROR") {
		t.Errorf("failed run span: error=%v otel.status_code=%v", run["error"], run["otel.status_code"])
	}
	if !failed {
		refs := spans[byName["etl/load"]].References
		if len(refs) != 1 || refs[0].SpanID != caller.SpanID.String() {
			t.Errorf("run span references %+v, want the request's traceparent span %s", refs, caller.SpanID)
		}
	}
}
