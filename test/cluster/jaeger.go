package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Jaeger is a Jaeger v2 all-in-one process (in-memory storage) on free
// loopback ports, for tests that assert on traces.
type Jaeger struct {
	// OTLPHTTP and OTLPGRPC are endpoints for OTEL_EXPORTER_OTLP_ENDPOINT
	// (with OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc).
	OTLPHTTP, OTLPGRPC string
	// QueryURL serves the UI and the HTTP API (/api/traces/<id>).
	QueryURL string
	proc     *proc
	dir      string
}

// jaegerConfig keeps the receivers, storage and query of Jaeger's own
// all-in-one configuration, on the ports given.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
extensions:
  jaeger_storage:
    backends:
      memstore: {memory: {max_traces: 100000}}
  jaeger_query:
    storage: {traces: memstore}
    http: {endpoint: "%[1]s"}
    grpc: {endpoint: "%[2]s"}
  healthcheckv2:
    use_v2: true
    http: {endpoint: "%[3]s"}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "%[4]s"}
      http: {endpoint: "%[5]s"}
processors:
  batch: {timeout: 100ms}
exporters:
  jaeger_storage_exporter: {trace_storage: memstore}
`

// JaegerOptions place Jaeger's listeners.
type JaegerOptions struct {
	// Host is the address the OTLP receivers bind (default 127.0.0.1).
	Host string
	// QueryAddr is the UI and API address (default: a free loopback port).
	QueryAddr string
}

// StartJaeger starts Jaeger from binDir (hack/build-bins.sh builds it) and
// waits until its query API answers. Stop it with Stop.
func StartJaeger(ctx context.Context, binDir, workDir string, o JaegerOptions) (*Jaeger, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	addr := func(host string) (string, error) {
		p, err := freePort(host)
		return fmt.Sprintf("%s:%d", host, p), err
	}
	var ports [5]string
	for i := range ports {
		host := "127.0.0.1"
		if i >= 3 {
			host = o.Host // the OTLP receivers
		}
		var err error
		if ports[i], err = addr(host); err != nil {
			return nil, err
		}
	}
	if o.QueryAddr != "" {
		ports[0] = o.QueryAddr
	}
	cfg := filepath.Join(workDir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, ports[0], ports[1], ports[2], ports[3], ports[4]), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc(workDir, "jaeger", "", []string{filepath.Join(binDir, "jaeger"), "--config=file:" + cfg}, nil)
	if err != nil {
		return nil, err
	}
	j := &Jaeger{OTLPHTTP: "http://" + ports[4], OTLPGRPC: "http://" + ports[3], QueryURL: "http://" + ports[0], proc: p, dir: workDir}
	if err := waitHTTP(ctx, j.QueryURL+"/api/services", "", p, 60*time.Second); err != nil {
		j.Stop()
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	return j, nil
}

// Stop ends the Jaeger process (by its process group).
func (j *Jaeger) Stop() {
	if j != nil && j.proc != nil {
		stopGroup(j.proc.PID, 5*time.Second)
	}
}
