// Package framework gives the integration and e2e suites their cluster:
// the one named by KUBECONFIG when set (any cluster, kind included), else
// an offline cluster started for the suite and torn down after it.
package framework
