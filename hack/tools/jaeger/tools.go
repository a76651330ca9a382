//go:build tools

// Package tools pins Jaeger v2 (all-in-one: OTLP in, query API and UI out),
// which the trace tests and the demo run. Built by hack/build-bins.sh.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
