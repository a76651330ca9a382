//go:build tools

// Package tools pins the oldest Kubernetes minor the integration tier
// runs against (its control plane only). Built from the Go module proxy
// by hack/build-bins.sh.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
