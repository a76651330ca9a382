// Package telemetry holds magekube's observability pieces: W3C trace
// context, the OTLP JSON span files the runner writes and the agent
// forwards. The agent's exporter and metrics are its subpackages otlp and
// metrics, which the runner does not link.
package telemetry
