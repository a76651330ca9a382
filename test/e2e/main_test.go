//go:build e2e

// Package e2e runs magekube on kind: a control plane and two workers on
// the node image test/kind builds offline (framework.SetupKind), or any
// cluster named by MAGEKUBE_E2E_KUBECONFIG.
package e2e

import (
	"os"
	"testing"

	"github.com/magekube/magekube/test/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { os.Exit(framework.MainKind(m, &env)) }
