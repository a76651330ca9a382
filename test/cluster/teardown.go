package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Teardown stops and removes everything recorded in state: the control
// plane's processes (last started, first stopped), anything left running
// from the work directory, and the work directory.
func Teardown(state *State) {
	for i := len(state.Procs) - 1; i >= 0; i-- {
		stopOwned(state.Procs[i], state.WorkDir, 10*time.Second)
	}
	killMatching(state.WorkDir)
	if os.Getenv("MAGEKUBE_KEEP_CLUSTER_DIR") == "" {
		_ = os.RemoveAll(state.WorkDir)
	}
}

// Down tears down the cluster whose work directory is dir.
func Down(dir string) error {
	var state State
	if err := readState(filepath.Join(dir, StateFile), &state); err != nil {
		return err
	}
	Teardown(&state)
	return nil
}

func readState(path string, s *State) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, s)
}

// stopOwned stops p's process group if p's PID still runs a command of
// this cluster (its command line names the work directory).
func stopOwned(p *proc, workDir string, grace time.Duration) {
	if cmdline(p.PID) != "" && strings.Contains(cmdline(p.PID), workDir) {
		stopGroup(p.PID, grace)
	}
}

func cmdline(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(data), "\x00", " ")
}

// killMatching SIGKILLs every process whose command line contains s
// (containerd shims name their socket; crashed components their paths).
func killMatching(s string) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if strings.Contains(cmdline(pid), s) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
