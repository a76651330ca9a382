package runner

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// oomCounter reads the OOM-kill counter of the runner's own memory
// cgroup, cgroup v2 (memory.events) or v1 (memory.oom_control).
type oomCounter struct {
	files []string // candidates, most specific first
}

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

func newOOMCounter() oomCounter {
	data, _ := os.ReadFile("/proc/self/cgroup")
	return oomCounter{files: oomFiles(cgroupRoot, data)}
}

// count is the number of OOM kills so far; ok is false when no counter
// can be read (no memory controller, an old kernel).
func (c oomCounter) count() (n int, ok bool) {
	for _, f := range c.files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, ok := parseOOMKills(data); ok {
			return n, true
		}
	}
	return 0, false
}

// oomFiles lists where the counter may be, given /proc/self/cgroup: under
// the process's cgroup path, and at the mount's root (a container sees
// its own cgroup there, with or without a cgroup namespace).
func oomFiles(root string, procCgroup []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			out = append(out, filepath.Join(root, parts[2], "memory.events"))
		case containsController(parts[1], "memory"):
			out = append(out, filepath.Join(root, "memory", parts[2], "memory.oom_control"))
		}
	}
	return append(out, filepath.Join(root, "memory.events"), filepath.Join(root, "memory", "memory.oom_control"))
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// parseOOMKills finds the "oom_kill N" line of memory.events (v2) or
// memory.oom_control (v1, kernel 4.13 and later).
func parseOOMKills(data []byte) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "oom_kill" {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}
