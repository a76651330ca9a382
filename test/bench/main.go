// Command bench measures the agent on the offline control plane with kwok
// nodes (real API server, Job controller and scheduler; pods run no
// container): dispatch latency, completion-notice latency against a
// tracker that polls every 5 s as Mage's executor does, throughput, and
// the agent's memory and restart time with many Jobs tracked. It prints a
// markdown table and, as its last line, one JSON object. `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magekube/magekube/test/cluster"
)

func main() {
	binDir := flag.String("bin-dir", os.Getenv("MAGEKUBE_BIN_DIR"), "directory with the cluster binaries and kwok (hack/build-bins.sh)")
	throughputN := flag.String("throughput", "1000,5000", "runs requested at once for the throughput figures, comma-separated; the JSON's throughput_runs_per_s is the last")
	only := flag.String("only", "", "run only these sections, comma-separated: dispatch, notice, throughput, scale, runner (default: all; the JSON line then lacks the others)")
	profileDir := flag.String("profile", "", "write CPU profiles of the agent (this process) and the API server during the dispatch bursts to this directory")
	scaleN := flag.Int("scale", 10000, "Jobs tracked at once for the memory and restart figures")
	flag.Parse()
	var sizes []int
	for _, f := range strings.Split(*throughputN, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -throughput: %q is not a positive number of runs\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(*binDir, sizes, *scaleN, *profileDir, sections(*only)); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sections parses -only: which sections to run (all when empty).
func sections(only string) func(string) bool {
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	return func(s string) bool { return only == "" || want[s] }
}

// began is when the bench started; progress lines on stderr count from it.
var began = time.Now()

func progress(what string) {
	fmt.Fprintf(os.Stderr, "bench: %s (at %s)\n", what, time.Since(began).Round(time.Second))
}

func run(binDir string, throughputSizes []int, scaleN int, profileDir string, section func(string) bool) error {
	ctx := context.Background()
	// The runner's overhead first, before the cluster loads the machine.
	var overhead float64
	var overheadErr error
	if section("runner") {
		progress("runner overhead")
		overhead, overheadErr = runnerOverhead()
	}
	cluster.DownStale(false)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupted)

	rep := newReport()

	// Dispatch, notice and throughput share one cluster and the agent in
	// this process; scale gets a fresh cluster, so the Jobs the others
	// left do not weigh on it.
	var b *bench
	stopAgent := func() {}
	if section("dispatch") || section("notice") || section("throughput") {
		var stop func()
		var err error
		if b, stop, err = startBench(ctx, binDir, profileDir, "bench", interrupted); err != nil {
			return err
		}
		defer stop()
		if stopAgent, err = b.startAgent(b.agentClient, 5000); err != nil {
			return err
		}
		defer stopAgent()
	}

	if section("dispatch") {
		progress("dispatch")
		if err := b.dispatchSection(ctx, profileDir, rep); err != nil {
			return err
		}
	}
	if section("notice") {
		progress("notice")
		if err := b.noticeSection(ctx, rep); err != nil {
			return err
		}
	}
	if section("throughput") {
		progress("throughput")
		if err := b.throughputSection(throughputSizes, rep); err != nil {
			return err
		}
	}
	if section("scale") {
		progress("scale")
		if b != nil {
			stopAgent()
			b.stop()
		}
		if err := scaleSection(ctx, binDir, profileDir, scaleN, interrupted, rep); err != nil {
			return err
		}
	}

	// Runner overhead, from the runner's benchmark.
	if section("runner") {
		if overheadErr == nil {
			rep.add("runner_overhead_ms", overhead, "runner overhead: added wall time (ms)")
		} else {
			rep.res["runner_overhead_ms"] = nil
			fmt.Fprintln(os.Stderr, "runner benchmark:", overheadErr)
		}
	}

	progress("done")
	rep.print()
	return nil
}

// report is the bench's figures: a table for people, a JSON line for
// tools.
type report struct {
	res   map[string]any
	table [][2]string
}

func newReport() *report {
	machine := fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return &report{res: map[string]any{"machine": machine}}
}

// add records figure k with its table label.
func (r *report) add(k string, v any, label string) {
	r.res[k] = v
	r.table = append(r.table, [2]string{label, fmt.Sprint(v)})
}

// print writes the table, then the JSON line (always the last line).
func (r *report) print() {
	fmt.Printf("\n| %s | figure |\n|---|---|\n", "measured on "+r.res["machine"].(string))
	for _, row := range r.table {
		fmt.Printf("| %s | %s |\n", row[0], row[1])
	}
	line, _ := json.Marshal(r.res)
	fmt.Println(string(line))
}
