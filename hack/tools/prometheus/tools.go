//go:build tools

// Package tools pins promtool, Prometheus' own checker and unit-test
// runner for the alert rules in deploy/monitoring. Built by
// hack/build-bins.sh.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
