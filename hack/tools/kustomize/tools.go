//go:build tools

// Package tools pins the kustomize CLI the kustomize-inflation route
// (Argo CD's: helmCharts with --enable-helm) is tested with: v5.8.1, the
// first that runs Helm 4, as Argo CD v3.5 ships them. Built from the Go
// module proxy by hack/build-bins.sh.
package tools

import _ "sigs.k8s.io/kustomize/kustomize/v5"
