// Package framework gives the integration and e2e suites their cluster:
// the one named by MAGEKUBE_E2E_KUBECONFIG when set; else, for the e2e
// suite, a kind cluster on the offline node image (SetupKind), and for the
// integration suite the control-plane + kwok cluster (Setup), each started
// for the suite and torn down after it.
package framework
