package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestFlagsAfterTheSubcommand: shared flags work before and after the
// subcommand, the later one wins, and each subcommand's help lists them.
func TestFlagsAfterTheSubcommand(t *testing.T) {
	t.Parallel()
	dirA, dirB := t.TempDir(), t.TempDir()
	l := protocol.Layout{Root: dirB}
	st := protocol.Status{ID: "only-in-b", Phase: protocol.PhaseSucceeded}
	if err := protocol.WriteJSONAtomic(l.RunFile(st.ID, protocol.StatusFile), st); err == nil {
		t.Fatal("want the run dir to be missing first")
	}
	mustMkdir(t, l.RunDir(st.ID))
	if err := protocol.WriteJSONAtomic(l.RunFile(st.ID, protocol.StatusFile), st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"before", []string{"agent", "--dir", dirB, "status"}, true},
		{"after", []string{"agent", "status", "--dir", dirB}, true},
		{"after wins", []string{"agent", "--dir", dirA, "status", "--dir", dirB}, true},
		{"before only A", []string{"agent", "--dir", dirA, "status"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := newApp(&out, &errOut).RunContext(context.Background(), tc.args); err != nil {
				t.Fatalf("%v: %v %s", tc.args, err, errOut.String())
			}
			if got := strings.Contains(out.String(), "only-in-b"); got != tc.want {
				t.Errorf("%v listed only-in-b: %v, want %v:\n%s", tc.args, got, tc.want, out.String())
			}
		})
	}
	for cmd, flags := range map[string][]string{
		"run":    {"--dir", "--kubeconfig", "--pod-name", "--allow-privileged", "MAGEKUBE_DIR", "KUBECONFIG"},
		"render": {"--dir", "--kubeconfig", "--pod-file", "--allow-secret"},
		"status": {"--dir", "MAGEKUBE_DIR"},
		"submit": {"--dir", "--wait"},
		"cancel": {"--dir"},
	} {
		var out bytes.Buffer
		if err := newApp(&out, &out).RunContext(context.Background(), []string{"agent", cmd, "--help"}); err != nil {
			t.Fatal(err)
		}
		for _, f := range flags {
			if !strings.Contains(out.String(), f) {
				t.Errorf("agent %s --help lacks %s", cmd, f)
			}
		}
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
