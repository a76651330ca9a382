package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserAgent: the agent names itself to the API server unless told
// otherwise.
func TestUserAgent(t *testing.T) {
	t.Parallel()
	kubeconfig := filepath.Join(t.TempDir(), "config")
	data := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://127.0.0.1:6443}}]\n" +
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.UserAgent, "magekube-agent/") {
		t.Errorf("user agent %q, want magekube-agent/<version>", cfg.UserAgent)
	}
	if cfg, _ := Config(Options{Kubeconfig: kubeconfig, UserAgent: "bench"}); cfg.UserAgent != "bench" {
		t.Errorf("user agent %q, want the one given", cfg.UserAgent)
	}
}
