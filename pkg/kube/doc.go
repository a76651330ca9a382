// Package kube is the agent's Kubernetes client code: clients with
// deliberate client-side rate limits, the agent's own Pod, the outage
// signal, and the preflight check of the agent's permissions.
package kube
