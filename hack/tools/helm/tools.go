//go:build tools

// Package tools pins the helm CLI the Helm routes are tested with: Helm 4
// (post-renderers as plugins), built from the Go module proxy by
// hack/build-bins.sh.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
