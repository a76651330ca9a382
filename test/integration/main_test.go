//go:build integration

// Package integration runs magekube against a real API server, controller
// manager and scheduler, with no real node: what the API accepts, defaults
// and rejects, with real RBAC. Two kwok nodes, tainted so that only pods
// that tolerate them land there, play pods to the exit code a test sets.
package integration

import (
	"os"
	"testing"

	"github.com/magekube/magekube/test/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { os.Exit(framework.Main(m, 2, &env)) }
