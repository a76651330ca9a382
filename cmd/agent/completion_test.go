package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletion: each shell gets a script, a real bash completes
// subcommands and flags through it, and the agent lists its subcommands.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		app := newApp(&out, &out)
		if err := app.RunContext(context.Background(), []string{"agent", "completion", shell}); err != nil || !strings.Contains(out.String(), "agent") {
			t.Errorf("completion %s: %v\n%s", shell, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := newApp(&out, &out).RunContext(context.Background(), []string{"agent", "completion", "tcsh"}); err == nil || !strings.Contains(err.Error(), "want bash, zsh or fish") {
		t.Errorf("unknown shell: %v", err)
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := filepath.Join(t.TempDir(), "agent")
	if b, err := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	script := `source <("$BIN" completion bash)
COMP_WORDS=("$BIN" st); COMP_CWORD=1; _magekube_agent; echo "${COMPREPLY[*]}"
COMP_WORDS=("$BIN" status --wa); COMP_CWORD=2; _magekube_agent; echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(cmd.Environ(), "BIN="+bin)
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "status\n--watch\n" {
		t.Errorf("bash completion: %v\n%q, want \"status\\n--watch\\n\"", err, got)
	}
	// urfave/cli reads the words from the process's own arguments, so the
	// subcommand list is checked on the binary too.
	list, err := exec.Command(bin, completionFlag).Output()
	for _, want := range []string{"run", "status", "logs", "completion"} {
		if err != nil || !strings.Contains(string(list), want+"\n") {
			t.Errorf("completions %q (%v) lack %s", list, err, want)
		}
	}
}
