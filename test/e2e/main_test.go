//go:build e2e

// Package e2e runs magekube on a cluster with real nodes: the offline
// cluster (two nodes, containerd, runc, kubelet) by default, or any cluster
// named by MAGEKUBE_E2E_KUBECONFIG, such as kind (hack/kind/).
package e2e

import (
	"os"
	"testing"

	"github.com/magekube/magekube/test/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { os.Exit(framework.Main(m, 2, 0, &env)) }
