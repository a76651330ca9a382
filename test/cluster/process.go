package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// proc is one started component. Its PID is recorded in the state file
// so that `cluster down` can stop it after the starter is gone.
type proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Log  string `json:"log"`
	// What started it, so that a test can stop and start it again.
	Argv  []string `json:"argv"`
	Env   []string `json:"env,omitempty"`
	Netns string   `json:"netns,omitempty"`
	cmd   *exec.Cmd
}

// startProc starts argv in its own process group with its output in
// logDir/name.log. With netns set it runs inside that network namespace
// (nsenter --net, which keeps the host's /sys, unlike ip netns exec).
func startProc(logDir, name, netns string, argv []string, env []string) (*proc, error) {
	run := argv
	if netns != "" {
		run = append([]string{"nsenter", "--net=/var/run/netns/" + netns, "--"}, argv...)
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(run[0], run[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{Name: name, PID: cmd.Process.Pid, Log: logPath, Argv: argv, Env: env, Netns: netns, cmd: cmd}
	go func() { _ = cmd.Wait() }() // reap it when it exits
	return p, nil
}

// stopGroup ends the process group pgid: SIGTERM, then SIGKILL after
// grace. It returns when no process of the group is left.
func stopGroup(pgid int, grace time.Duration) {
	if pgid <= 1 {
		return
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for range 250 {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last bytes of a log for error messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}
