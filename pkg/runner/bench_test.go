package runner_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExecOverhead measures what the runner adds to a command:
// wall time of `runner exec -- true` minus that of `true`, the runner's
// peak RSS, and the binary's size. Targets: ≤5 ms, ≤15 MiB, static.
func BenchmarkExecOverhead(b *testing.B) {
	dir := b.TempDir()
	timeIt := func(args ...string) (time.Duration, int64) {
		var total time.Duration
		var peak int64
		for range b.N {
			cmd := exec.Command(args[0], args[1:]...)
			began := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			total += time.Since(began)
			peak = max(peak, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		}
		return total / time.Duration(b.N), peak
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	bare, _ := timeIt(truePath)
	wrapped, rss := timeIt(runnerBin, "exec", "--run-dir", dir, "--", truePath)
	b.StopTimer()
	fi, err := os.Stat(runnerBin)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(wrapped-bare)/float64(time.Millisecond), "added-ms/op")
	b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}
