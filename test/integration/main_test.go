//go:build integration

// Package integration runs magekube against a real API server, controller
// manager and scheduler (no nodes): what the API accepts, defaults and
// rejects, with real RBAC.
package integration

import (
	"os"
	"testing"

	"github.com/magekube/magekube/test/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { os.Exit(framework.Main(m, 0, &env)) }
