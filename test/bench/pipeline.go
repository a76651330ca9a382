package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// pipelineSection runs the e2e suite's TestPipelineWallTime (its own kind
// cluster: two real Mage stacks, one through magekube, one through Mage's
// own Kubernetes executor, the same image and project) and adds its
// figures: per pipeline run, Mage's own wall time, the gaps between
// dependent blocks and the Jobs created.
func pipelineSection(repo string, runs int, rep *report) error {
	out, err := os.CreateTemp("", "magekube-pipeline-*.json")
	if err != nil {
		return err
	}
	out.Close()
	defer os.Remove(out.Name())
	tags := os.Getenv("MAGEKUBE_GO_TAGS")
	if tags == "" {
		tags = "urfave_cli_no_docs"
	}
	progress(fmt.Sprintf("pipeline: two real Mage stacks on a kind cluster, %d runs of each pipeline per executor, then 50 runs of the chain at once through magekube (about 40 min)", runs))
	cmd := exec.Command("go", "test", "-tags", tags+",e2e", "-count=1", "-timeout", "90m", "-run", "^TestPipelineWallTime$", "-v", "./test/e2e/")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "MAGEKUBE_BENCH_PIPELINE_OUT="+out.Name(), fmt.Sprintf("MAGEKUBE_BENCH_PIPELINE_RUNS=%d", runs), "MAGEKUBE_E2E_AUDIT=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pipeline: TestPipelineWallTime: %w", err)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		return err
	}
	return pipelineRows(data, rep)
}

// pipelineRows adds the rows and JSON keys of TestPipelineWallTime's
// results.
func pipelineRows(data []byte, rep *report) error {
	var res map[string]any
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("pipeline results: %w", err)
	}
	floats := func(key string) []float64 {
		list, _ := res[key].([]any)
		var out []float64
		for _, v := range list {
			if f, ok := v.(float64); ok {
				out = append(out, f)
			}
		}
		sort.Float64s(out)
		return out
	}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		if len(xs)%2 == 1 {
			return xs[len(xs)/2]
		}
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	rows, _ := res["rows"].([]any)
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprint(r))
	}
	fmt.Fprintf(os.Stderr, "\npipeline runs in real Mage on kind:\n| executor | pipeline | Mage's run | wall (s) | gaps, sum (s) | largest gap (s) | Jobs created | API requests (the audit log) |\n|---|---|---|---|---|---|---|---|\n%s\n\n", strings.Join(lines, "\n"))
	for _, p := range []string{"chain10", "fanout"} {
		for _, side := range []string{"mage", "magekube", "magekube-off"} {
			m := median(floats("wall_s/" + side + "/" + p))
			key := fmt.Sprintf("pipeline_%s_wall_s_%s", p, strings.ReplaceAll(side, "-", "_"))
			rep.add(key, round(m, 1), fmt.Sprintf("pipeline %s in real Mage on kind, %s: wall time, median (s)", p, side))
		}
	}
	for _, p := range []string{"chain10", "fanout"} {
		for _, side := range []string{"mage", "magekube", "magekube-off"} {
			if xs := floats("requests/" + side + "/" + p); len(xs) > 0 {
				key := fmt.Sprintf("pipeline_%s_requests_%s", p, strings.ReplaceAll(side, "-", "_"))
				rep.add(key, median(xs), fmt.Sprintf("pipeline %s, %s: API requests per pipeline run (the audit log: the stack's service accounts), median", p, side))
			}
		}
	}
	if n, ok := res["load_runs"].(float64); ok {
		once, _ := res["load_exactly_once"].(bool)
		walls, gaps := floats("load_wall_s"), floats("load_agent_gaps_ms")
		rep.add("pipeline_exactly_once", once, fmt.Sprintf("pipeline load: %.0f runs of chain10 at once through magekube, every block run executed once (Mage's block runs, the agent's runs, Jobs, pods)", n))
		span, _ := res["load_span_s"].(float64)
		rep.add("pipeline_load_span_s", round(span, 1), "pipeline load: Mage's first start → last completion (s)")
		rep.add("pipeline_load_wall_s_p50", round(median(walls), 1), "pipeline load: a pipeline run's wall time, median (s)")
		if len(walls) > 0 {
			rep.add("pipeline_load_wall_s_max", round(walls[len(walls)-1], 1), "pipeline load: a pipeline run's wall time, the longest (s)")
		}
		var ds []time.Duration
		for _, g := range gaps {
			ds = append(ds, time.Duration(g*float64(time.Millisecond)))
		}
		rep.add("pipeline_load_gap_p99_ms", ms(pct(ds, 99)), "pipeline load: a block run claimed after its upstream Job ended (the agent's times), p99 (ms)")
	}
	var gaps []time.Duration
	for _, p := range []string{"chain10", "fanout"} {
		for _, g := range floats("agent_gaps_ms/magekube/" + p) {
			gaps = append(gaps, time.Duration(g*float64(time.Millisecond)))
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	rep.add("pipeline_gap_p99_ms", ms(pct(gaps, 99)), "pipeline, magekube with early scheduling: a block run claimed after its upstream Jobs ended (the agent's status times), p99 (ms; target ≤ 1000)")
	mage, mk := median(floats("wall_s/mage/chain10")), median(floats("wall_s/magekube/chain10"))
	if mk > 0 {
		rep.table = append(rep.table, [2]string{"pipeline chain10: magekube's wall time over Mage's own executor's (target ≤ 1/3)", fmt.Sprintf("%.2f", mk/mage)})
	}
	return nil
}
