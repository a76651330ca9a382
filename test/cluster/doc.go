// Package cluster starts and stops a real Kubernetes cluster from the
// pinned binaries in hack/: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler (no root), plus real nodes (containerd, runc, CNI and
// a kubelet, each in its own network namespace; root). Every suite and
// `make cluster-up` use it.
package cluster
