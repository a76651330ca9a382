// Package telemetry holds magekube's observability pieces: W3C trace
// context, the OTLP JSON span files the runner writes and the agent
// forwards, and (in the agent) metrics.
package telemetry
