package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	for _, d := range []string{l.Requests(), filepath.Join(dirA, protocol.RequestsDir), filepath.Join(dirA, protocol.RunsDir)} {
		mustMkdir(t, d)
	}
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

// TestLogsAndStatusOutputs: agent logs prints a run's log; agent status
// prints a table, a wide table, JSON or YAML, and refuses other formats.
func TestLogsAndStatusOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := protocol.Layout{Root: dir}
	mustMkdir(t, l.RunDir("r1"))
	mustMkdir(t, l.Requests())
	st := protocol.Status{ID: "r1", Phase: protocol.PhaseFailed, Reason: "OOMKilled", Message: "over 512Mi", Pod: "p-1"}
	if err := protocol.WriteJSONAtomic(l.RunFile("r1", protocol.StatusFile), st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.RunFile("r1", protocol.LogFile), []byte("loaded 42 rows\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := newApp(&out, &out)
		err := app.RunContext(context.Background(), flagsFirst(app, append([]string{"agent"}, args...)))
		return out.String(), err
	}
	if out, err := run("logs", "r1", "--dir", dir, "-f"); !errors.Is(err, exitCode(1)) || out != "loaded 42 rows\n" {
		t.Errorf("logs -f of a failed run: %q, %v; want its log and exit code 1", out, err)
	}
	if out, err := run("status", "--dir", dir, "-o", "wide"); err != nil || !strings.Contains(out, "MESSAGE") || !strings.Contains(out, "over 512Mi") || !strings.Contains(out, "p-1") {
		t.Errorf("status -o wide: %q, %v", out, err)
	}
	out, err := run("status", "r1", "--dir", dir, "-o", "json")
	var got protocol.Status
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Reason != "OOMKilled" {
		t.Errorf("status r1 -o json: %q, %v", out, err)
	}
	if out, err := run("status", "--dir", dir, "-o", "yaml"); err != nil || !strings.Contains(out, "reason: OOMKilled") {
		t.Errorf("status -o yaml: %q, %v", out, err)
	}
	if _, err := run("status", "--dir", dir, "-o", "xml"); err == nil {
		t.Error("status -o xml: no error")
	}
	if _, err := run("logs", "nope", "--dir", dir); err == nil {
		t.Error("logs of a missing run: no error")
	}
}

func TestFlagsFirst(t *testing.T) {
	t.Parallel()
	app := newApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"agent logs r1 -f --dir D", "agent logs -f --dir D r1"},
		{"agent --dir D logs r1 -f", "agent --dir D logs -f r1"},
		{"agent render req.json --pod-file p.yaml --allow-privileged", "agent render --pod-file p.yaml --allow-privileged req.json"},
		{"agent submit - --wait", "agent submit --wait -"},
		{"agent status --dir=D r1", "agent status --dir=D r1"},
		{"agent run", "agent run"},
		{"agent", "agent"},
	} {
		if got := strings.Join(flagsFirst(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}
