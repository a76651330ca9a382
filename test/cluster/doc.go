// Package cluster starts and stops a control-plane Kubernetes cluster
// from the pinned binaries in hack/: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, with kwok's fake nodes. The
// integration tier and the benchmarks run on it, and fault tests stop and
// start its components. Clusters with real nodes are kind's (test/kind).
package cluster
