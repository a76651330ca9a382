package server

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryMax is where cgroup v2 shows the container's memory limit.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// SetMemoryLimit gives the Go garbage collector a soft limit of 90% of the
// container's memory limit, so a burst of cache growth (the first list of
// thousands of Jobs) makes the GC work harder instead of the kernel
// killing the agent. GOMEMLIMIT, when set, wins. It returns the limit set,
// or 0 for none.
func SetMemoryLimit() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := cgroupLimit(cgroupMemoryMax)
	if limit <= 0 {
		return 0
	}
	soft := limit / 10 * 9
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupLimit reads a cgroup v2 memory.max: bytes, or 0 for "max" or no
// file.
func cgroupLimit(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || v <= 0 {
		return 0
	}
	return v
}
