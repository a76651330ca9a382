//go:build tools

// Package tools pins kwok, which fakes nodes and pod lifecycles for the
// scale benchmarks. Built by hack/build-bins.sh.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
