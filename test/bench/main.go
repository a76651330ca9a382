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
	"errors"
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
	"github.com/magekube/magekube/test/framework"
)

// options are the bench's flags.
type options struct {
	binDir, profileDir, python     string
	repo                           string // the module root: the Python benches' home
	throughput, peer               []int
	scale, peerNodes, pipelineRuns int
	section                        func(string) bool
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", os.Getenv("MAGEKUBE_BIN_DIR"), "directory with the cluster binaries and kwok (hack/build-bins.sh)")
	throughputN := flag.String("throughput", "1000,5000", "runs requested at once for the throughput figures, comma-separated; the JSON's throughput_runs_per_s is the last")
	peerN := flag.String("peer", "50,500", "block runs at once through Mage's own executor and through magekube, comma-separated; the JSON's peer figures are the last")
	flag.StringVar(&o.python, "mage-python", os.Getenv("MAGEKUBE_MAGE_PYTHON"), "python of the pinned mage-ai's virtualenv, for the peer sections and the project the others' runs are of (hack/mage-venv.sh)")
	only := flag.String("only", "", "run only these sections, comma-separated: trigger, dispatch, notice, throughput, hostile, scale, peer, peer-nodes, pipeline, runner (default: all; the JSON line then lacks the others)")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU profiles of the agent and the API server during the dispatch bursts, of the agent during the peer batches, and its heap with the scale section's Jobs, to this directory")
	flag.IntVar(&o.scale, "scale", 10000, "Jobs tracked at once for the memory and restart figures")
	flag.IntVar(&o.pipelineRuns, "pipeline-runs", 2, "runs of each pipeline through each executor in real Mage on kind (section pipeline; needs Docker: hack/bench.sh starts it)")
	flag.IntVar(&o.peerNodes, "peer-nodes", 4, "block runs through each side on a kind cluster's real nodes, each Job running `mage run` (section peer-nodes; needs Docker: hack/bench.sh starts it)")
	flag.Parse()
	var err error
	if o.throughput, err = sizes("throughput", *throughputN); err == nil {
		o.peer, err = sizes("peer", *peerN)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o.section = sections(*only)
	if o.repo, err = framework.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sizes parses a comma-separated list of positive numbers of runs.
func sizes(flagName, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-%s: %q is not a positive number of runs", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
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

// agentInflight is --max-inflight of the agent that dispatch, notice and
// throughput share: room for the largest burst.
const agentInflight = 5000

func progress(what string) {
	fmt.Fprintf(os.Stderr, "bench: %s (at %s)\n", what, time.Since(began).Round(time.Second))
}

func run(o options) error {
	ctx := context.Background()
	binDir, profileDir, section := o.binDir, o.profileDir, o.section
	defer framework.RemoveBinaries()
	// The runner's overhead first, before the cluster loads the machine.
	var overhead, overheadTmpfs, overTrue float64
	var overheadErr error
	if section("runner") {
		progress("runner overhead")
		overhead, overheadTmpfs, overTrue, overheadErr = runnerOverhead()
	}
	cluster.DownStale(false)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupted)

	rep := newReport()
	if section("trigger") {
		progress("trigger notice")
		if err := triggerSection(o.repo, rep); err != nil {
			return err
		}
	}

	// Dispatch, notice and throughput share one cluster and the agent in
	// this process (the same-moment bursts excepted: see useAgent); scale
	// gets a fresh cluster, so the Jobs the others left do not weigh on
	// it. All four dispatch runs of a project the pinned mage-ai makes.
	var project string
	if section("dispatch") || section("notice") || section("throughput") || section("hostile") || section("scale") {
		dir, remove, err := mageProject(o.repo, o.python)
		if err != nil {
			return err
		}
		defer remove()
		project = dir
	}
	var b *bench
	if section("dispatch") || section("notice") || section("throughput") || section("hostile") {
		var stop func()
		var err error
		if b, stop, err = startBench(ctx, binDir, profileDir, project, "bench", false, interrupted); err != nil {
			return err
		}
		defer stop()
		if err := b.useAgent(true, agentInflight); err != nil {
			return err
		}
		defer func() { b.stopAgent() }()
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
		if err := b.throughputSection(o.throughput, rep); err != nil {
			return err
		}
	}
	if section("hostile") {
		progress("hostile")
		if err := b.hostileSection(rep); err != nil {
			return err
		}
	}
	if section("scale") {
		progress("scale")
		if b != nil {
			b.stopAgent()
			b.stop()
		}
		if err := scaleSection(ctx, binDir, profileDir, project, o.scale, interrupted, rep); err != nil {
			return err
		}
	}

	if section("peer") {
		if o.python == "" {
			return errors.New("peer: no -mage-python (hack/bench.sh sets MAGEKUBE_MAGE_PYTHON from hack/mage-venv.sh)")
		}
		if err := peerSection(ctx, binDir, profileDir, o.repo, o.python, o.peer, interrupted, rep); err != nil {
			return err
		}
	}

	if section("peer-nodes") {
		if o.python == "" {
			return errors.New("peer-nodes: no -mage-python (hack/bench.sh sets MAGEKUBE_MAGE_PYTHON from hack/mage-venv.sh)")
		}
		if err := peerNodesSection(ctx, o.repo, o.python, o.peerNodes, interrupted, rep); err != nil {
			return err
		}
	}

	if section("pipeline") {
		if err := pipelineSection(o.repo, o.pipelineRuns, rep); err != nil {
			return err
		}
	}

	// Runner overhead, from the runner's benchmark.
	if section("runner") {
		if overheadErr == nil {
			rep.add("runner_overhead_ms", overhead, "runner: `runner exec -- true` over an empty static Go program (ms; target ≤ 5)")
			rep.add("runner_overhead_tmpfs_ms", overheadTmpfs, "  the same, its run directory on tmpfs (no disk flush for result.json) (ms)")
			rep.add("runner_over_true_ms", overTrue, "runner: `runner exec -- true` over `true` (ms)")
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
