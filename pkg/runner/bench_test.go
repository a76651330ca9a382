package runner_test

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExecOverhead measures what the runner adds to a command:
// wall time of `runner exec -- true` minus that of an empty static Go
// program (what starting any Go binary costs; target ≤5 ms) and minus
// that of `true`, the runner's peak RSS, and the binary's size (≤15 MiB,
// static). They run in turn, b.N rounds, and each figure is the median:
// a round slowed by something else on the machine moves all alike, or
// none. The runner runs twice a round: with its run directory on the
// disk, and on tmpfs (over-empty-go-tmpfs), where the fsyncs of the
// durable result.json cost nothing.
func BenchmarkExecOverhead(b *testing.B) {
	dir := b.TempDir()
	run := func(args ...string) (time.Duration, int64) {
		cmd := exec.Command(args[0], args[1:]...)
		began := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		return time.Since(began), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	empty := emptyGoBinary(b)
	// The same on tmpfs, where the durable result.json costs no disk
	// flush: the difference is the disk's.
	memDir, err := os.MkdirTemp("/dev/shm", "runner-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(memDir)
	var bare, goStart, wrapped, inMemory []time.Duration
	var peak int64 // the runner's
	b.ResetTimer()
	for range b.N {
		t, _ := run(truePath)
		bare = append(bare, t)
		t, _ = run(empty)
		goStart = append(goStart, t)
		t, rss := run(runnerBin, "exec", "--run-dir", firstAttempt(b, dir), "--", truePath)
		wrapped, peak = append(wrapped, t), max(peak, rss)
		t, _ = run(runnerBin, "exec", "--run-dir", firstAttempt(b, memDir), "--", truePath)
		inMemory = append(inMemory, t)
	}
	b.StopTimer()
	fi, err := os.Stat(runnerBin)
	if err != nil {
		b.Fatal(err)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(median(wrapped)-median(goStart)), "over-empty-go-ms/op")
	b.ReportMetric(ms(median(inMemory)-median(goStart)), "over-empty-go-tmpfs-ms/op")
	b.ReportMetric(ms(median(wrapped)-median(bare)), "added-ms/op")
	b.ReportMetric(float64(peak)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
}

// firstAttempt is a new run directory in dir: each round is a run's
// first attempt, as in a Job.
func firstAttempt(b *testing.B, dir string) string {
	runDir, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		b.Fatal(err)
	}
	return runDir
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
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
