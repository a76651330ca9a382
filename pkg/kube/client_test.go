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

// TestKubeconfigListAndContext: --kubeconfig takes a list as KUBECONFIG
// does (files merged, the first's current context wins), and --context
// picks a context from any of them.
func TestKubeconfigListAndContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, cluster, server string, current bool) string {
		data := "apiVersion: v1\nkind: Config\nclusters: [{name: " + cluster + ", cluster: {server: " + server + "}}]\n" +
			"users: [{name: u-" + cluster + ", user: {token: x}}]\ncontexts: [{name: " + cluster + ", context: {cluster: " + cluster + ", user: u-" + cluster + "}}]\n"
		if current {
			data += "current-context: " + cluster + "\n"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	a := write("a", "one", "https://127.0.0.1:6443", true)
	b := write("b", "two", "https://127.0.0.2:6443", false)
	list := a + string(os.PathListSeparator) + b
	for _, tc := range []struct{ context, want string }{{"", "https://127.0.0.1:6443"}, {"two", "https://127.0.0.2:6443"}} {
		cfg, err := Config(Options{Kubeconfig: list, Context: tc.context})
		if err != nil || cfg.Host != tc.want {
			t.Errorf("context %q: host %v (%v), want %s", tc.context, cfg, err, tc.want)
		}
	}
}
