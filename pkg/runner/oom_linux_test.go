package runner_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magekube/magekube/pkg/protocol"
)

// TestOOMKilledChildIsReported runs the runner in a memory cgroup of its
// own with a 64 MiB limit and a command whose child (not the runner)
// outgrows it: the kernel kills the child, and result.json says
// OOMKilled. It needs root and a writable cgroup file system (v1 or v2),
// as in a Job container's own cgroup; elsewhere it is skipped.
func TestOOMKilledChildIsReported(t *testing.T) {
	cg := memoryCgroup(t, 64<<20)
	dir := t.TempDir()
	script := fmt.Sprintf("echo $$ > %s && exec %s exec --run-dir %s -- sh -c 'head -c 400000000 /dev/zero | tail > /dev/null'",
		filepath.Join(cg, "cgroup.procs"), runnerBin, dir)
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err == nil {
		t.Fatalf("the command survived a 64 MiB limit:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, protocol.ResultFile))
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, out)
	}
	var res protocol.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Reason != protocol.ReasonOOMKilled || res.ExitCode == 0 || !strings.Contains(res.Message, "memory limit") {
		t.Errorf("result %+v, want OOMKilled with a non-zero exit code", res)
	}
}

// memoryCgroup makes a cgroup with a memory limit and removes it when the
// test ends.
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a memory cgroup")
	}
	name := fmt.Sprintf("magekube-oom-test-%d", os.Getpid())
	dir, limitFile := filepath.Join("/sys/fs/cgroup/memory", name), "memory.limit_in_bytes"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dir, limitFile = filepath.Join("/sys/fs/cgroup", name), "memory.max"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no writable memory cgroup here: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Skipf("cannot set a memory limit: %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0o644) // v2; v1 has no swap limit without memsw
	return dir
}
