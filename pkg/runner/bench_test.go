package runner_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExecOverhead measures what the runner adds to a command:
// wall time of `runner exec -- true` minus that of an empty static Go
// program (what starting any Go binary costs; target ≤5 ms) and minus
// that of `true`, the runner's peak RSS, and the binary's size (≤15 MiB,
// static).
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
	empty := emptyGoBinary(b)
	b.ResetTimer()
	bare, _ := timeIt(truePath)
	goStart, _ := timeIt(empty)
	wrapped, rss := timeIt(runnerBin, "exec", "--run-dir", dir, "--", truePath)
	b.StopTimer()
	fi, err := os.Stat(runnerBin)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(wrapped-goStart)/float64(time.Millisecond), "over-empty-go-ms/op")
	b.ReportMetric(float64(wrapped-bare)/float64(time.Millisecond), "added-ms/op")
	b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}

// emptyGoBinary builds `func main() {}`, static and stripped like the
// runner.
func emptyGoBinary(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(dir+"/main.go", []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dir+"/go.mod", []byte("module empty\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/empty", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the empty program: %v\n%s", err, out)
	}
	return dir + "/empty"
}
