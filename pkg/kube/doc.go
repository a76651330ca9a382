// Package kube builds Kubernetes clients with deliberate client-side rate
// limits, and reads the agent's own Pod.
package kube
