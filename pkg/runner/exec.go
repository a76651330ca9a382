package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// Exit codes of `runner exec` besides the command's own.
const (
	// ExitTimeout is returned when --timeout expired (as timeout(1) does).
	ExitTimeout = 124
	// ExitRunnerError means the runner itself failed before the command ran.
	ExitRunnerError = 125
	// ExitNotExecutable and ExitNotFound follow the shells' convention.
	ExitNotExecutable = 126
	ExitNotFound      = 127
)

// Options for one execution.
type Options struct {
	// RunDir receives log, result.json and spans/; empty means none.
	RunDir string
	// Timeout, when positive, ends the command: TERM, Grace, then KILL.
	Timeout time.Duration
	// Grace is how long the group has after a TERM before it is KILLed.
	Grace   time.Duration
	Command []string
	// Env is the runner's environment; the child gets a copy with its own
	// TRACEPARENT. Pod names the pod in result.json.
	Env []string
	Pod string
	// LogLimit caps RUN_DIR/log in bytes (0: no cap); the container's
	// own log still gets everything.
	LogLimit int64
	Stdout   io.Writer
	Stderr   io.Writer
}

// Exec runs the command to its end and returns its exit code (see the
// Exit constants for the runner's own). It never returns before the
// result is written and the output drained.
func Exec(ctx context.Context, o Options) int {
	start := time.Now()
	rec := newRecorder(o, start)
	defer rec.close()

	code, sig, reason, msg := run(ctx, o, rec)
	rec.finish(code, sig, reason, msg, time.Now())
	return code
}

// run starts the command and supervises it; it returns the exit code,
// the signal that ended it (0 for none), the reason and a message.
func run(ctx context.Context, o Options, rec *recorder) (int, syscall.Signal, string, string) {
	if err := becomeSubreaper(); err != nil && os.Getpid() != 1 {
		fmt.Fprintf(o.Stderr, "runner: warning: cannot reap orphans: %v\n", err)
	}
	if rec.key != "" {
		if err := protectKey(); err != nil {
			fmt.Fprintf(o.Stderr, "runner: warning: cannot hide the run's key from the block (%v): the agent judges the run by its pod alone\n", err)
			rec.key = "" // an unsealed result counts for nothing
		}
	}
	outR, outW, errR, errW, err := pipes()
	if err != nil {
		return ExitRunnerError, 0, protocol.ReasonStartError, err.Error()
	}
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Env = rec.childEnv(o.Env)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	// Subscribe before the start, so no signal sent meanwhile is lost.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, Forwarded...)
	defer signal.Stop(sigs)

	oom := newOOMCounter()
	oomBefore, oomKnown := oom.count()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	drained := make(chan struct{}, 2)
	go func() { tee(outR, o.Stdout, rec.log); drained <- struct{}{} }()
	go func() { tee(errR, o.Stderr, rec.log); drained <- struct{}{} }()
	defer func() {
		drain(drained, outR, errR)
		sweep()
	}()
	if err != nil {
		fmt.Fprintf(o.Stderr, "runner: %v\n", err)
		return startFailed(err), 0, protocol.ReasonStartError, err.Error()
	}
	rec.started(cmd.Process.Pid)

	exited := make(chan syscall.WaitStatus, 1)
	go reap(cmd.Process.Pid, exited)
	ws, timedOut := supervise(ctx, o, -cmd.Process.Pid, sigs, exited)
	code, sig, reason, msg := outcome(ws, timedOut, o.Timeout)
	if oomAfter, ok := oom.count(); ok && oomKnown && oomAfter > oomBefore && code != 0 {
		reason = protocol.ReasonOOMKilled
		msg = fmt.Sprintf("the kernel killed a process of the command for exceeding the container's memory limit (%d OOM kill(s) in its memory cgroup); %s", oomAfter-oomBefore, msg)
	}
	return code, sig, reason, msg
}

// pipes are the command's stdout and stderr, read by the tees.
func pipes() (outR, outW, errR, errW *os.File, err error) {
	if outR, outW, err = os.Pipe(); err != nil {
		return nil, nil, nil, nil, err
	}
	if errR, errW, err = os.Pipe(); err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, nil, nil, err
	}
	return outR, outW, errR, errW, nil
}

// startFailed is the exit code for a command that could not start, as the
// shells have it: 127 not found, 126 not executable.
func startFailed(err error) int {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
		return ExitNotFound
	}
	return ExitNotExecutable
}

// supervise forwards signals to the process group until the command
// exits, enforcing the timeout and the grace period after a TERM.
func supervise(ctx context.Context, o Options, group int, sigs <-chan os.Signal, exited <-chan syscall.WaitStatus) (syscall.WaitStatus, bool) {
	var timeout, kill <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	timedOut := false
	terminate := func() {
		_ = syscall.Kill(group, syscall.SIGTERM)
		if kill == nil {
			k := time.NewTimer(o.Grace)
			kill = k.C
		}
	}
	done := ctx.Done()
	for {
		select {
		case ws := <-exited:
			return ws, timedOut
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if sig == syscall.SIGTERM {
				terminate()
				continue
			}
			_ = syscall.Kill(group, sig)
		case <-timeout:
			timedOut = true
			timeout = nil
			terminate()
		case <-done:
			done = nil
			terminate()
		case <-kill:
			_ = syscall.Kill(group, syscall.SIGKILL)
		}
	}
}

// drain waits for both output copiers. A background grandchild may keep a
// pipe open after the command exited: its output gets a short while, then
// the pipes are closed so the runner can finish.
func drain(drained <-chan struct{}, pipes ...*os.File) {
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	for range 2 {
		select {
		case <-drained:
		case <-deadline.C:
			for _, p := range pipes {
				p.Close()
			}
			<-drained
		}
	}
	for _, p := range pipes {
		p.Close()
	}
}

func outcome(ws syscall.WaitStatus, timedOut bool, timeout time.Duration) (int, syscall.Signal, string, string) {
	var code int
	var sig syscall.Signal
	switch {
	case ws.Signaled():
		sig = ws.Signal()
		code = 128 + int(sig)
	default:
		code = ws.ExitStatus()
	}
	switch {
	case timedOut:
		return ExitTimeout, sig, protocol.ReasonTimeout, fmt.Sprintf("the command ran longer than --timeout %s and was stopped", timeout)
	case sig != 0:
		return code, sig, protocol.ReasonSignaled, fmt.Sprintf("the command was killed by %s", signalName(sig))
	case code != 0:
		return code, 0, protocol.ReasonError, fmt.Sprintf("the command exited with code %d", code)
	}
	return 0, 0, protocol.ReasonCompleted, ""
}
