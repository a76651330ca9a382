//go:build integration

package integration

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/test/framework"
)

// agentBin is the agent binary, built once for the suite.
func agentBin(t *testing.T) string {
	t.Helper()
	bin, err := framework.Binary("github.com/magekube/magekube/cmd/agent")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func agent(t *testing.T, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command(agentBin(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("agent %v: %v\n%s", args, err, e.String())
	}
	return o.Bytes(), e.Bytes()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if err := framework.Poll(60*time.Second, 100*time.Millisecond, ok); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitSA(t *testing.T, ns string) {
	t.Helper()
	waitFor(t, "the default service account in "+ns, func() bool {
		_, err := env.Client.CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil
	})
}
