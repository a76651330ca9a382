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

// DefaultGCPercent is the agent's GOGC: the heap may grow to 1.5 times
// the live heap between collections, not twice. A sidecar's memory is its
// pod's, and the agent allocates little once its caches are built: the
// extra collections cost a few milliseconds of CPU per restart and burst,
// and the peak with 10,000 runs tracked drops by about a sixth (make
// bench, rss_10k_mib).
const DefaultGCPercent = 50

// SetGCPercent sets DefaultGCPercent unless GOGC is set, and reports
// whether it did.
func SetGCPercent() bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(DefaultGCPercent)
	return true
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
