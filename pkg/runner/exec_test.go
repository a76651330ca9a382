package runner_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for code := range 256 {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			got, _ := run(t, []string{"--run-dir", dir}, "sh", "-c", "exit "+strconv.Itoa(code))
			if got != code {
				t.Errorf("runner exited %d, want %d", got, code)
			}
			res := readResult(t, dir)
			want := "Completed"
			if code != 0 {
				want = "Error"
			}
			if res.ExitCode != code || res.Signal != nil || res.Reason != want || res.Attempt != 1 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestForwardedSignalsKillTheCommand(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// sh resets SIGINT/SIGQUIT only for interactive use; exec
			// makes sleep the group's only process.
			p := start(t, []string{"--run-dir", dir}, "sh", "-c", "echo ready; exec sleep 30")
			p.waitReady(t)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if got := p.wait(t); got != 128+int(sig) {
				t.Errorf("runner exited %d, want %d", got, 128+int(sig))
			}
			res := readResult(t, dir)
			if res.Signal == nil || res.Reason != "Signaled" || res.ExitCode != 128+int(sig) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestTrappedTermExitCode(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "sh", "-c", `trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done`)
	p.waitReady(t)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.wait(t); got != 42 {
		t.Errorf("runner exited %d, want the trap's 42", got)
	}
}

func TestGraceThenKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, []string{"--run-dir", dir, "--grace", "300ms"}, "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	p.waitReady(t)
	sent := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	got := p.wait(t)
	if got != 137 {
		t.Errorf("runner exited %d, want 137 (SIGKILL)", got)
	}
	if d := time.Since(sent); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("killed after %s, want just after the 300ms grace", d)
	}
	if res := readResult(t, dir); res.Signal == nil || *res.Signal != "SIGKILL" {
		t.Errorf("result %+v", res)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	began := time.Now()
	got, _ := run(t, []string{"--run-dir", dir, "--timeout", "200ms", "--grace", "1s"}, "sleep", "30")
	if got != 124 {
		t.Errorf("runner exited %d, want 124", got)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
	if res := readResult(t, dir); res.Reason != "Timeout" || res.ExitCode != 124 {
		t.Errorf("result %+v", res)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	t.Parallel()
	// The subshell exits at once; its sleep 1 is orphaned and handed to
	// the runner (subreaper), which must collect it when it exits. The
	// margins (0.85 s, then 1 s) hold on a loaded machine.
	p := start(t, nil, "sh", "-c", `(sleep 1 &); echo ready; sleep 2.5`)
	p.waitReady(t)
	ready := time.Now()
	time.Sleep(150 * time.Millisecond)
	if n := len(children(t, p.cmd.Process.Pid, "")); n < 2 {
		t.Errorf("the orphan was not handed to the runner: %d children", n)
	}
	time.Sleep(time.Until(ready.Add(1500 * time.Millisecond)))
	if zombies := children(t, p.cmd.Process.Pid, "Z"); len(zombies) > 0 {
		t.Errorf("zombie children of the runner: %v", zombies)
	}
	if got := p.wait(t); got != 0 {
		t.Errorf("runner exited %d", got)
	}
}

// children lists the processes whose parent is parent, in state (any
// state when empty).
func children(t *testing.T, parent int, state string) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && (state == "" || fields[0] == state) && fields[1] == strconv.Itoa(parent) {
			out = append(out, f)
		}
	}
	return out
}

func TestLargeOutputBoundedMemory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const size = 100_000_000
	p := start(t, []string{"--run-dir", dir}, "head", "-c", strconv.Itoa(size), "/dev/zero")
	if got := p.wait(t); got != 0 {
		t.Fatalf("runner exited %d", got)
	}
	if n := p.stdout.Len(); n != size {
		t.Errorf("stdout got %d bytes, want %d", n, size)
	}
	if fi, err := os.Stat(filepath.Join(dir, protocol.LogFile)); err != nil || fi.Size() != size {
		t.Errorf("log: %v, %v bytes, want %d", err, fi.Size(), size)
	}
	if rss := rusage(p).Maxrss; rss > 30*1024 {
		t.Errorf("runner peak RSS %d KiB for 100 MB of output, want under 30 MiB", rss)
	}
}

func TestStreamsStayInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := `i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done`
	p := start(t, []string{"--run-dir", dir}, "sh", "-c", script)
	if got := p.wait(t); got != 0 {
		t.Fatalf("runner exited %d", got)
	}
	checkSequence(t, "stdout", p.stdout.String(), "out", 2000)
	checkSequence(t, "stderr", p.stderr.String(), "err", 2000)
	log, err := os.ReadFile(filepath.Join(dir, protocol.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var outs, errs []string
	for _, line := range strings.Split(strings.TrimSuffix(string(log), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "out "):
			outs = append(outs, line)
		case strings.HasPrefix(line, "err "):
			errs = append(errs, line)
		default:
			t.Fatalf("log has a broken line %q", line)
		}
	}
	checkSequence(t, "log stdout", strings.Join(outs, "\n"), "out", 2000)
	checkSequence(t, "log stderr", strings.Join(errs, "\n"), "err", 2000)
}

func checkSequence(t *testing.T, name, text, prefix string, n int) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	i := 0
	for sc.Scan() {
		if want := fmt.Sprintf("%s %d", prefix, i); sc.Text() != want {
			t.Fatalf("%s line %d = %q, want %q", name, i, sc.Text(), want)
		}
		i++
	}
	if i != n {
		t.Errorf("%s has %d lines, want %d", name, i, n)
	}
}

func TestKilledRunnerLeavesNoPartialResult(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		dir := t.TempDir()
		p := start(t, []string{"--run-dir", dir}, "sh", "-c", "head -c 100000 /dev/zero")
		time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t)
		data, err := os.ReadFile(filepath.Join(dir, protocol.ResultFile))
		if os.IsNotExist(err) {
			continue
		}
		var res protocol.Result
		if err != nil || json.Unmarshal(data, &res) != nil || res.Attempt != 1 {
			t.Fatalf("iteration %d: partial result.json %q (%v)", i, data, err)
		}
	}
}

func TestUnwritableRunDir(t *testing.T) {
	t.Parallel()
	got, p := run(t, []string{"--run-dir", "/proc/magekube-not-writable"}, "sh", "-c", "echo hello; exit 7")
	if got != 7 {
		t.Errorf("runner exited %d, want the command's 7", got)
	}
	if p.stdout.String() != "hello\n" {
		t.Errorf("stdout %q", p.stdout)
	}
	if lines := strings.Count(p.stderr.String(), "\n"); lines != 1 || !strings.Contains(p.stderr.String(), "not writable") {
		t.Errorf("want one warning on stderr, got %q", p.stderr)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	if got, _ := run(t, nil, "/no/such/command"); got != 127 {
		t.Errorf("missing command: exit %d, want 127", got)
	}
	if got, _ := run(t, nil, "/etc/hostname"); got != 126 {
		t.Errorf("not executable: exit %d, want 126", got)
	}
	if got, _ := run(t, nil); got != 125 {
		t.Errorf("no command: exit %d, want 125", got)
	}
}

func TestTraceContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	got := startEnv(t, []string{"PATH=" + os.Getenv("PATH"), "TRACEPARENT=" + parent, "MAGEKUBE_POD_NAME=job-pod-x"},
		[]string{"--run-dir", dir}, "sh", "-c", `echo "$TRACEPARENT"; exit 3`)
	if code := got.wait(t); code != 3 {
		t.Fatalf("runner exited %d", code)
	}
	child, err := telemetry.ParseTraceParent(strings.TrimSpace(got.stdout.String()))
	if err != nil {
		t.Fatalf("child TRACEPARENT: %v", err)
	}
	want, _ := telemetry.ParseTraceParent(parent)
	if child.TraceID != want.TraceID || child.SpanID == want.SpanID {
		t.Errorf("child context %s does not continue %s with its own span", child.TraceParent(), parent)
	}
	data, err := os.ReadFile(filepath.Join(dir, protocol.SpansDir, "runner-exec-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	td, err := telemetry.DecodeSpanFile(data)
	if err != nil {
		t.Fatal(err)
	}
	span := td.ResourceSpans[0].ScopeSpans[0].Spans[0]
	if span.Name != "runner.exec" || span.TraceID != want.TraceID.String() || span.ParentSpanID != want.SpanID.String() ||
		span.SpanID != child.SpanID.String() || span.Status.Code != telemetry.StatusError {
		t.Errorf("span %+v", span)
	}
	res := readResult(t, dir)
	if res.TraceID != want.TraceID.String() || res.Pod != "job-pod-x" {
		t.Errorf("result %+v", res)
	}
}

// TestPlantedLogFiles: a FIFO or a link planted at the run's log by
// another pod neither blocks the command nor receives its output.
func TestPlantedLogFiles(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(log, elsewhere string) error{
		"FIFO": func(log, _ string) error { return syscall.Mkfifo(log, 0o644) },
		"link": func(log, elsewhere string) error { return os.Symlink(elsewhere, log) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			elsewhere := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(elsewhere, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := plant(filepath.Join(dir, protocol.LogFile), elsewhere); err != nil {
				t.Fatal(err)
			}
			done := make(chan int, 1)
			var p *proc
			go func() {
				var code int
				code, p = run(t, []string{"--run-dir", dir}, "echo", "secret output")
				done <- code
			}()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("exit code %d, want 0", code)
				}
				if !strings.Contains(p.stderr.String(), "not a regular file") && !strings.Contains(p.stderr.String(), "open") {
					t.Errorf("no warning about the log: %s", p.stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the command did not finish: the planted log blocked it")
			}
			if data, _ := os.ReadFile(elsewhere); len(data) > 0 {
				t.Errorf("output went through the link: %q", data)
			}
			if r := readResult(t, dir); r.ExitCode != 0 {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// TestResultIsSealed: in a Job (MAGEKUBE_RUN_KEY, MAGEKUBE_RUN_ID) the
// result carries the run's seal, and the block's command never sees the
// key.
func TestResultIsSealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "MAGEKUBE_RUN_KEY=job-uid-1", "MAGEKUBE_RUN_ID=run-1", "MAGEKUBE_POD_NAME=pod-1"}
	p := startEnv(t, env, []string{"--run-dir", dir}, "sh", "-c", `echo "key=${MAGEKUBE_RUN_KEY:-none}"`)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	if !strings.Contains(p.stdout.String(), "key=none") {
		t.Errorf("the command saw the run key: %s", p.stdout)
	}
	r := readResult(t, dir)
	if !protocol.ResultSealed("job-uid-1", "run-1", r) {
		t.Errorf("result not sealed: %+v", r)
	}
}

// TestLogLimit: the run's log stops at --log-limit with a note; the
// container's stdout still gets everything.
func TestLogLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, p := run(t, []string{"--run-dir", dir, "--log-limit", "1000"}, "sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, protocol.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "x"); got != 1000 || !strings.Contains(string(data), "stops at its limit of 1000 bytes") {
		t.Errorf("log has %d x and %q at its end", got, data[max(0, len(data)-120):])
	}
	if got := strings.Count(p.stdout.String(), "x"); got != 5000 {
		t.Errorf("stdout has %d x, want 5000", got)
	}
}

// TestAttemptNumbers: each pod of a run takes the next attempt number,
// past any gap, and two at once never share one.
func TestAttemptNumbers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for want := 1; want <= 3; want++ {
		run(t, []string{"--run-dir", dir}, "true")
		if got := readResult(t, dir).Attempt; got != want {
			t.Fatalf("attempt %d, want %d", got, want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "attempts", "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, []string{"--run-dir", dir}, "true")
	if got := readResult(t, dir).Attempt; got != 8 {
		t.Errorf("attempt %d after attempts 1-3 and 7, want 8", got)
	}
	done := make(chan struct{})
	for range 4 {
		go func() { run(t, []string{"--run-dir", dir}, "true"); done <- struct{}{} }()
	}
	for range 4 {
		<-done
	}
	entries, err := os.ReadDir(filepath.Join(dir, "attempts"))
	if err != nil || len(entries) != 9 {
		t.Errorf("%d attempt directories after 9 pods (%v), want 9", len(entries), err)
	}
}

// TestBlockCannotReadKey: the block runs as the runner's user, so without
// protection it reads the key from the runner's initial environment
// (/proc/<runner>/environ) and could seal a result of its own. The runner
// is non-dumpable before the block starts: the read fails. As root the
// runner runs as uid 4242 (no capabilities), as a Job's non-root user.
func TestBlockCannotReadKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "MAGEKUBE_RUN_KEY=job-uid-secret", "MAGEKUBE_RUN_ID=run-1"}
	args := []string{"exec", "--run-dir", dir, "--", "sh", "-c",
		`cat /proc/$PPID/environ 2>/dev/null | tr '\0' '\n' | grep -c job-uid-secret; cat /proc/$PPID/mem >/dev/null 2>&1 && echo mem-readable; exit 0`}
	cmd := exec.Command(runnerBin, args...)
	cmd.Env = env
	if os.Geteuid() == 0 {
		for _, d := range []string{filepath.Dir(runnerBin), filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runner: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "0" {
		t.Errorf("the block read the runner's key or memory; it printed %q", got)
	}
	if res := readResult(t, dir); !protocol.ResultSealed("job-uid-secret", "run-1", res) {
		t.Errorf("the runner's own result is not sealed: %+v", res)
	}
}
