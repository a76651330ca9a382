package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOOMFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, proc string
		want       []string
	}{
		{"v2 with cgroup namespace", "0::/\n", []string{"/r/memory.events", "/r/memory.events", "/r/memory/memory.oom_control"}},
		{"v2 host path", "0::/kubepods/pod1/c1\n", []string{"/r/kubepods/pod1/c1/memory.events", "/r/memory.events", "/r/memory/memory.oom_control"}},
		{"v1", "12:cpu,cpuacct:/kubepods/c1\n9:memory:/kubepods/c1\n1:name=systemd:/x\n", []string{
			"/r/memory/kubepods/c1/memory.oom_control", "/r/memory.events", "/r/memory/memory.oom_control"}},
		{"unreadable", "", []string{"/r/memory.events", "/r/memory/memory.oom_control"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, oomFiles("/r", []byte(tc.proc))); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestParseOOMKills(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		n        int
		ok       bool
	}{
		{"v2", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n", 2, true},
		{"v1", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", 1, true},
		{"v1 before 4.13", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"garbage", "oom_kill x\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, ok := parseOOMKills([]byte(tc.in))
			if n != tc.n || ok != tc.ok {
				t.Errorf("got %d %v, want %d %v", n, ok, tc.n, tc.ok)
			}
		})
	}
}

func TestOOMCounterReadsTheFirstReadableFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events := filepath.Join(dir, "memory.events")
	if err := os.WriteFile(events, []byte("oom 1\noom_kill 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := oomCounter{files: []string{filepath.Join(dir, "missing"), events}}
	if n, ok := c.count(); n != 4 || !ok {
		t.Errorf("count = %d %v, want 4 true", n, ok)
	}
}
