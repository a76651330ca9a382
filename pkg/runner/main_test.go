package runner_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// runnerBin is the real runner binary, built once for all tests: they run
// it as a separate process, exactly as the Job container does.
var runnerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerBin = filepath.Join(dir, "runner")
	// Built as hack/build.sh builds it: static, stripped, without the
	// CLI's man-page generator.
	build := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w", "-o", runnerBin, "github.com/magekube/magekube/cmd/runner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build runner: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one runner process under test.
type proc struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	ready  chan struct{}
	copied chan struct{}
}

// start runs `runner exec [flags] -- command...`. When the command prints
// a line "ready", p.ready closes: the signal handlers are in place then.
func start(t *testing.T, flags []string, command ...string) *proc {
	t.Helper()
	return startEnv(t, nil, flags, command...)
}

// startEnv is start with the runner's environment (nil: the test's).
func startEnv(t *testing.T, env, flags []string, command ...string) *proc {
	t.Helper()
	args := append(append([]string{"exec"}, flags...), "--")
	cmd := exec.Command(runnerBin, append(args, command...)...)
	cmd.Env = env
	p := &proc{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, ready: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	p.copied = make(chan struct{})
	go func() {
		defer close(p.copied)
		r := bufio.NewReader(out)
		signalled := false
		for {
			line, err := r.ReadString('\n')
			p.stdout.WriteString(line)
			if !signalled && strings.TrimSpace(line) == "ready" {
				close(p.ready)
				signalled = true
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { <-p.copied })
	return p
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("command never printed ready; stderr: %s", p.stderr)
	}
}

// wait returns the runner's exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.copied // Wait closes the pipe: read it to the end first
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return p.cmd.ProcessState.ExitCode()
}

func run(t *testing.T, flags []string, command ...string) (int, *proc) {
	t.Helper()
	p := start(t, flags, command...)
	return p.wait(t), p
}

func readResult(t *testing.T, dir string) protocol.Result {
	t.Helper()
	var r protocol.Result
	if err := protocol.ReadJSON(filepath.Join(dir, protocol.ResultFile), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func rusage(p *proc) *syscall.Rusage { return p.cmd.ProcessState.SysUsage().(*syscall.Rusage) }
