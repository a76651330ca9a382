//go:build integration

package integration

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	buildOnce sync.Once
	agentPath string
	buildErr  error
)

// agentBin builds the agent binary once for the suite.
func agentBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := exec.Command("mktemp", "-d").Output()
		if err != nil {
			buildErr = err
			return
		}
		agentPath = filepath.Join(string(bytes.TrimSpace(dir)), "agent")
		out, err := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", agentPath, "github.com/magekube/magekube/cmd/agent").CombinedOutput()
		if err != nil {
			buildErr = err
			agentPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build agent: %v\n%s", buildErr, agentPath)
	}
	return agentPath
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
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func waitSA(t *testing.T, ns string) {
	t.Helper()
	waitFor(t, "the default service account in "+ns, func() bool {
		_, err := env.Client.CoreV1().ServiceAccounts(ns).Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil
	})
}
