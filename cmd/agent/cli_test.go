package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/magekube/magekube/pkg/protocol"
)

// agentDir makes an agent directory with the given statuses and requests
// no agent has claimed.
func agentDir(t *testing.T, statuses []protocol.Status, unclaimed ...string) protocol.Layout {
	t.Helper()
	l := protocol.Layout{Root: t.TempDir()}
	mustMkdir(t, l.Requests())
	mustMkdir(t, l.Runs())
	for _, s := range statuses {
		mustMkdir(t, l.RunDir(s.ID))
		if err := protocol.WriteJSONAtomic(l.RunFile(s.ID, protocol.StatusFile), s); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range unclaimed {
		req := `{"apiVersion":"magekube/v1","id":"` + id + `","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"b","block_run_id":1}`
		if err := os.WriteFile(l.RequestPath(id), []byte(req), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func runAgent(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	app := newApp(&out, &out)
	err := app.RunContext(ctx, flagsFirst(app, append([]string{"agent"}, args...)))
	return out.String(), err
}

// TestUnclaimedRuns: a request no agent has claimed is listed and shown
// as Queued, and cancel withdraws it.
func TestUnclaimedRuns(t *testing.T) {
	t.Parallel()
	l := agentDir(t, []protocol.Status{{ID: "done", Phase: protocol.PhaseSucceeded, CreatedAt: time.Now().Add(-time.Hour)}}, "waiting")
	out, err := runAgent(t.Context(), "status", "--dir", l.Root)
	if err != nil || !strings.Contains(out, "waiting") || !strings.Contains(out, "Queued") || !strings.Contains(out, "done") {
		t.Errorf("status: %q %v", out, err)
	}
	if out, err := runAgent(t.Context(), "status", "waiting", "--dir", l.Root, "-o", "wide"); err != nil || !strings.Contains(out, "not claimed by an agent yet") {
		t.Errorf("status waiting: %q %v", out, err)
	}
	if out, err := runAgent(t.Context(), "cancel", "waiting", "--dir", l.Root); err != nil || !strings.Contains(out, "withdrew waiting") {
		t.Errorf("cancel of an unclaimed run: %q %v", out, err)
	}
	if _, err := os.Stat(l.RequestPath("waiting")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the request is still there: %v", err)
	}
	if _, err := runAgent(t.Context(), "status", "nope", "--dir", l.Root); err == nil || !strings.Contains(err.Error(), "no run nope") {
		t.Errorf("status of a missing run: %v", err)
	}
}

// TestNotAnAgentDir: a --dir without requests/ and runs/ is an error, not
// an empty table.
func TestNotAnAgentDir(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"status"}, {"logs", "r1"}, {"cancel", "r1"}} {
		_, err := runAgent(t.Context(), append(cmd, "--dir", "/nonexistent")...)
		if err == nil || !strings.Contains(err.Error(), "is not a magekube directory") {
			t.Errorf("%v: %v", cmd, err)
		}
	}
}

// TestSubmitWaitWithoutAgent: with no agent, submit --wait gives up after
// the claim timeout, naming the heartbeat, and withdraws the request; an
// interrupt withdraws it too.
func TestSubmitWaitWithoutAgent(t *testing.T) {
	t.Parallel()
	l := agentDir(t, nil)
	req := t.TempDir() + "/r.json"
	if err := os.WriteFile(req, []byte(`{"apiVersion":"magekube/v1","id":"lonely","kind":"block","project_dir":"/p","pipeline_uuid":"etl","block_uuid":"b","block_run_id":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runAgent(t.Context(), "submit", req, "--wait", "--claim-timeout", "300ms", "--dir", l.Root)
	if err == nil || !strings.Contains(err.Error(), "no agent claimed it within 300ms") || !strings.Contains(err.Error(), "heartbeat") || !strings.Contains(out, "withdrew lonely") {
		t.Errorf("submit --wait: %q %v", out, err)
	}
	if _, err := os.Stat(l.RequestPath("lonely")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the request is still there: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := runAgent(ctx, "submit", req, "--wait", "--dir", l.Root); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("interrupted submit --wait: %v", err)
	}
	if _, err := os.Stat(l.RequestPath("lonely")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted request is still there: %v", err)
	}
}

// TestTableOnATerminal: on a real terminal (a pty), a status whose
// message holds line breaks and an escape sequence stays on its row, the
// escape shown, ages read as kubectl's; a log's escape sequences are
// shown, not obeyed. --no-headers and -o name.
func TestTableOnATerminal(t *testing.T) {
	t.Parallel()
	created := time.Now().Add(-5 * time.Minute)
	l := agentDir(t, []protocol.Status{
		{ID: "a", Phase: protocol.PhaseFailed, Reason: "Error", Message: "line one\nline two\x1b[2J", CreatedAt: created},
		{ID: "b", Phase: protocol.PhaseSucceeded, CreatedAt: created.Add(time.Second)},
	})
	if err := os.WriteFile(l.RunFile("a", protocol.LogFile), []byte("red \x1b[31mtext\x1b[0m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	master, slave := openPTY(t)
	for _, args := range [][]string{{"status", "-o", "wide"}, {"logs", "a"}} {
		app := newApp(slave, slave)
		if err := app.RunContext(t.Context(), flagsFirst(app, append([]string{"agent", "--dir", l.Root}, args...))); err != nil {
			t.Fatal(err)
		}
	}
	slave.Close()
	screen := readAll(t, master)
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(screen, "\r\n", "\n"), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "a ") || !strings.HasPrefix(lines[2], "b ") {
		t.Fatalf("want a header, two rows and a log line, got %d lines:\n%s", len(lines), screen)
	}
	if strings.ContainsRune(screen, 0x1b) || !strings.Contains(lines[1], `line one line two\x1b[2J`) || !strings.Contains(lines[3], `red \x1b[31mtext`) {
		t.Errorf("control characters reached the terminal:\n%q", screen)
	}
	if !strings.Contains(lines[1], " 5m ") {
		t.Errorf("age not as kubectl prints it: %q", lines[1])
	}
	if out, err := runAgent(t.Context(), "status", "--no-headers", "--dir", l.Root); err != nil || strings.Contains(out, "PHASE") || strings.Count(out, "\n") != 2 {
		t.Errorf("--no-headers: %q %v", out, err)
	}
	if out, err := runAgent(t.Context(), "status", "-o", "name", "--dir", l.Root); err != nil || out != "run/a\nrun/b\n" {
		t.Errorf("-o name: %q %v", out, err)
	}
}

// TestVersionAndSuggestions: one version line both ways; a mistyped
// command gets a suggestion.
func TestVersionAndSuggestions(t *testing.T) {
	t.Parallel()
	a, err1 := runAgent(t.Context(), "--version")
	b, err2 := runAgent(t.Context(), "version")
	if err1 != nil || err2 != nil || a != b || strings.Count(a, "\n") != 1 {
		t.Errorf("--version %q, version %q (%v %v)", a, b, err1, err2)
	}
	out, err := runAgent(t.Context(), "stauts")
	if !strings.Contains(out+errString(err), `Did you mean "status"?`) {
		t.Errorf("agent stauts: %q %v", out, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// readAll reads what the terminal shows until the slave side is closed.
func readAll(t *testing.T, master *os.File) string {
	t.Helper()
	var b strings.Builder
	r := bufio.NewReader(master)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil { // EIO once the slave is closed
			return b.String()
		}
	}
}
