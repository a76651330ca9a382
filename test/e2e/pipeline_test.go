//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/test/framework"
)

// TestPipelineWallTime is `make bench`'s pipeline section, not part of
// the e2e tier: it runs when MAGEKUBE_BENCH_PIPELINE_OUT names the file
// for its results. Two real Mage stacks on kind, the same Mage image and
// the same project: one through magekube (early scheduling on, then off)
// and one through Mage's own Kubernetes executor (the rollback
// component). Each runs a 10-block chain and a 1 → 6 → 1 fan-out,
// MAGEKUBE_BENCH_PIPELINE_RUNS times each (default 2), one pipeline run
// at a time, every block a real `mage run` in its Job. The figures are
// Mage's own: a pipeline run's started_at → completed_at, and each block
// run's started_at after its upstream block runs' completed_at.
func TestPipelineWallTime(t *testing.T) {
	out := os.Getenv("MAGEKUBE_BENCH_PIPELINE_OUT")
	if out == "" {
		t.Skip("a bench: MAGEKUBE_BENCH_PIPELINE_OUT names its results file (hack/bench.sh sets it)")
	}
	if env.MageImage == "" {
		t.Skip("no Mage server image: the cluster was not made by framework.SetupKind")
	}
	runs := 2
	if v := os.Getenv("MAGEKUBE_BENCH_PIPELINE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MAGEKUBE_BENCH_PIPELINE_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	chain := make([]block, 10)
	for i := range chain {
		kind := "transformer"
		if i == 0 {
			kind = "data_loader"
		}
		chain[i] = block{fmt.Sprintf("step%d", i), kind, fmt.Sprintf("print('step %d')", i)}
	}
	fan := []block{{"seed", "data_loader", "print('seed')"}}
	upstream := map[string][]string{}
	var middle []string
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("part%d", i)
		fan = append(fan, block{name, "transformer", fmt.Sprintf("print('part %d')", i)})
		upstream[name] = []string{"seed"}
		middle = append(middle, name)
	}
	fan = append(fan, block{"merge", "transformer", "print('merge')"})
	upstream["merge"] = middle

	type side struct{ name, ns string }
	deploy := func(name string, rollback bool) (*mageAPI, side) {
		ns := env.Namespace(t, "bench-"+name)
		shared := projectVolume(t, ns)
		overlay := t.TempDir()
		if err := framework.KindStack(overlay, repo, ns, shared, env); err != nil {
			t.Fatal(err)
		}
		dir := overlay
		if rollback {
			dir = t.TempDir()
			component, _ := filepath.Rel(dir, filepath.Join(repo, "deploy/manifests/rollback"))
			base, _ := filepath.Rel(dir, overlay)
			k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources: [%s]\ncomponents: [%s]\n", ns, base, component)
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		env.Kubectl(t, ns, "", "apply", "-k", dir)
		return &mageAPI{ns: ns, name: "mage", shared: shared}, side{name, ns}
	}
	mk, mkSide := deploy("magekube", false)
	own, ownSide := deploy("mage", true)
	for _, m := range []*mageAPI{mk, own} {
		diag := func() string { return podDiagnostics(t, m.ns) }
		waitFor(t, 8*time.Minute, "Mage's API in "+m.ns, func() bool { return m.login(t.Context()) == nil }, diag)
		project := filepath.Join(m.shared, "default_repo")
		writePipeline(t, project, "chain10", "k8s", chain)
		writeDAG(t, project, "fanout", "k8s", fan, upstream)
	}

	results := map[string]any{"runs_each": runs}
	var rows []string
	measure := func(label string, m *mageAPI, s side) {
		for _, pipeline := range []string{"chain10", "fanout"} {
			var walls []float64
			for i := 0; i < runs; i++ {
				diag := func() string { return podDiagnostics(t, s.ns) + mageLog(t, s.ns, "app.kubernetes.io/name=mage", "mage") }
				jobsBefore := jobsCreated(t, s.ns)
				run := m.trigger(t, pipeline)
				if status := m.waitRunWithin(t, run, 20*time.Minute, diag); status != "completed" {
					t.Fatalf("%s: pipeline run %s %d: %s\n%s", label, pipeline, run, status, diag())
				}
				wall, gaps := m.pipelineTimes(t, run, pipeline, map[string]map[string][]string{"fanout": upstream}[pipeline])
				jobs := jobsCreated(t, s.ns) - jobsBefore
				walls = append(walls, wall.Seconds())
				var sum time.Duration
				for _, g := range gaps {
					sum += g
				}
				row := fmt.Sprintf("| %s | %s | %d | %.1f | %.1f | %.2f | %d |", label, pipeline, run, wall.Seconds(), sum.Seconds(), maxDuration(gaps).Seconds(), jobs)
				rows = append(rows, row)
				t.Log(row)
				key := label + "/" + pipeline
				all, _ := results["gaps_ms/"+key].([]float64)
				for _, g := range gaps {
					all = append(all, float64(g.Milliseconds()))
				}
				results["gaps_ms/"+key] = all
			}
			results["wall_s/"+label+"/"+pipeline] = walls
		}
	}
	measure("magekube", mk, mkSide)
	measure("mage", own, ownSide)
	// The switch off: Mage's scheduler back to its 10 s tick.
	env.Kubectl(t, mkSide.ns, "", "set", "env", "deployment/mage", "-c", "mage", "MAGEKUBE_EARLY_SCHEDULE=0")
	rollout(t, mkSide.ns, "mage", func() string { return podDiagnostics(t, mkSide.ns) })
	relogin(t, mk, "Mage's API with early scheduling off", func() string { return podDiagnostics(t, mkSide.ns) })
	measure("magekube-off", mk, mkSide)

	t.Logf("\n| executor | pipeline | Mage's run | wall (s) | gaps between dependent blocks, sum (s) | largest gap (s) | Jobs created |\n|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
	results["rows"] = rows
	data, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// jobsCreated counts the Jobs whose pods the Job controller created in
// ns (its SuccessfulCreate events, which outlive Mage's deleted Jobs).
func jobsCreated(t *testing.T, ns string) int {
	t.Helper()
	evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.kind=Job,reason=SuccessfulCreate"})
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, e := range evs.Items {
		jobs[e.InvolvedObject.Name] = true
	}
	return len(jobs)
}

// pipelineTimes: Mage's own timestamps of a completed pipeline run: its
// wall time, and for each block run with upstream block runs the time
// from the last of them completing to its start (upstream nil: a chain in
// the order the block runs started).
func (m *mageAPI) pipelineTimes(t *testing.T, run int, pipeline string, upstream map[string][]string) (time.Duration, []time.Duration) {
	t.Helper()
	out, err := m.call(t.Context(), "GET", fmt.Sprintf("pipeline_runs/%d", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := out["pipeline_run"].(map[string]any)
	started, completed := mageTime(t, r["started_at"]), mageTime(t, r["completed_at"])
	out, err = m.call(t.Context(), "GET", fmt.Sprintf("block_runs?pipeline_run_id=%d", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	type times struct{ start, end time.Time }
	blocks := map[string]times{}
	list, _ := out["block_runs"].([]any)
	for _, item := range list {
		b, _ := item.(map[string]any)
		blocks[fmt.Sprint(b["block_uuid"])] = times{mageTime(t, b["started_at"]), mageTime(t, b["completed_at"])}
	}
	if upstream == nil { // a chain: each block follows the one that started before it
		names := make([]string, 0, len(blocks))
		for n := range blocks {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return blocks[names[i]].start.Before(blocks[names[j]].start) })
		upstream = map[string][]string{}
		for i := 1; i < len(names); i++ {
			upstream[names[i]] = []string{names[i-1]}
		}
	}
	var gaps []time.Duration
	for name, ups := range upstream {
		var last time.Time
		for _, u := range ups {
			if blocks[u].end.After(last) {
				last = blocks[u].end
			}
		}
		gaps = append(gaps, blocks[name].start.Sub(last))
	}
	return completed.Sub(started), gaps
}

// mageTime parses a timestamp of Mage's API.
func mageTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02T15:04:05.999999-07:00", "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999"} {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts
		}
	}
	t.Fatalf("Mage's timestamp %q: no known layout", s)
	return time.Time{}
}

func maxDuration(ds []time.Duration) time.Duration {
	m := time.Duration(math.MinInt64)
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
