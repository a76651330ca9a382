package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/dryrun"
	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// The hostile section: what a writer of the shared volume costs the
// agent when it tries to exhaust it.

// hostileRequests is how many hostile requests are written at once.
const hostileRequests = 1000

// hostileRequest is a request of just under MaxRequestBytes that costs
// about ten times its size once parsed: a map of ~90,000 small
// variables.
func hostileRequest(id string, n int, project string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":%q,"pipeline_uuid":"etl","block_uuid":"block_%d","block_run_id":%d,"variables":{`,
		id, project, n%projectBlocks, n)
	for i := 0; b.Len() < protocol.MaxRequestBytes-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d":%d`, i, i)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// hostileQueue starts the agent as its own process with one in-flight
// slot, writes hostileRequests hostile requests at once, waits until
// every one is answered (queued, or failed QueueFull at the caps), and
// returns the agent's live heap after a GC, its peak RSS, and how many
// runs were queued and refused.
func (b *bench) hostileQueue() (liveMiB, peakMiB float64, queued, refused int, err error) {
	// The soft limit the agent gives Go's GC in its 256 MiB container
	// (server.SetMemoryLimit: 90%); here it has no cgroup limit to read.
	proc, err := b.startAgentProcess(1, "GOMEMLIMIT=230MiB")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer proc.stop()
	ids := make([]string, hostileRequests)
	for i := range ids {
		b.n++
		ids[i] = "h" + strconv.Itoa(b.n)
		tmp := filepath.Join(b.layout.Requests(), "."+ids[i]+".tmp")
		if err := os.WriteFile(tmp, hostileRequest(ids[i], b.n, b.project), 0o644); err != nil {
			return 0, 0, 0, 0, err
		}
		if err := os.Rename(tmp, b.layout.RequestPath(ids[i])); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, id := range ids {
		for {
			s, err := protocol.ReadStatus(b.layout, id)
			if err == nil && (s.Phase == protocol.PhaseQueued || s.Phase.Terminal() || s.Job != "") {
				switch s.Reason {
				case protocol.ReasonQueueFull:
					refused++
				case "":
					queued++
				}
				break
			}
			if time.Now().After(deadline) {
				return 0, 0, 0, 0, fmt.Errorf("hostile: run %s not answered after 5 minutes", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // the last intake workers hand their runs back
	live, err := liveHeap(proc.addr)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	for _, id := range ids { // the next sections need neither the files nor the Job
		_ = os.WriteFile(b.layout.RunFile(id, protocol.CancelFile), nil, 0o644)
	}
	return float64(live) / (1 << 20), float64(peakRSS(proc.cmd.Process.Pid)) / 1024, queued, refused, nil
}

// liveHeap is the agent's heap in use right after a GC: the heap profile
// with gc=1 collects first, then its /metrics tell.
func liveHeap(addr string) (int64, error) {
	if err := fetch("http://"+addr+"/debug/pprof/heap?gc=1", filepath.Join(os.TempDir(), "magekube-bench-hostile-heap.pprof")); err != nil {
		return 0, err
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_alloc_bytes in the agent's /metrics")
}

// hostileEnv times `agent render` (dryrun.Run, the agent's own build and
// policy) of a request whose executor config sets an env of n entries:
// the median of rounds renders, and whether it was built or refused.
func hostileEnv(n, rounds int) (time.Duration, string, error) {
	dir, err := os.MkdirTemp("", "magekube-bench-env")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	var req bytes.Buffer
	req.WriteString(`{"apiVersion":"magekube/v1","id":"env","kind":"block","project_dir":"` + dir + `","pipeline_uuid":"etl","block_uuid":"b","block_run_id":1,"executor_config":{"container":{"env":[`)
	for i := range n {
		if i > 0 {
			req.WriteByte(',')
		}
		fmt.Fprintf(&req, `{"name":"E%d"}`, i)
	}
	req.WriteString("]}}}")
	pod, err := yaml.Marshal(framework.ServerPod(framework.PodOptions{Namespace: "bench"}))
	if err != nil {
		return 0, "", err
	}
	reqFile, podFile := filepath.Join(dir, "request.json"), filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(reqFile, req.Bytes(), 0o644); err != nil {
		return 0, "", err
	}
	if err := os.WriteFile(podFile, pod, 0o644); err != nil {
		return 0, "", err
	}
	o := dryrun.Options{RequestFile: reqFile, PodFile: podFile,
		Settings: jobspec.Settings{AgentContainer: framework.AgentContainer, RunnerImage: "magekube/runner:bench"}}
	var times []time.Duration
	outcome := "built"
	for range rounds {
		start := time.Now()
		err := dryrun.Run(context.Background(), o, io.Discard)
		times = append(times, time.Since(start))
		if err != nil {
			outcome = "refused: " + firstLine(err.Error())
		}
	}
	slices.Sort(times)
	return times[len(times)/2], outcome, nil
}

func firstLine(s string) string {
	lines := strings.Split(s, "\n")
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return lines[0]
}

// hostileSection prints what hostile input costs the agent.
func (b *bench) hostileSection(rep *report) error {
	for _, n := range []int{1000, 55000} {
		median, outcome, err := hostileEnv(n, 11)
		if err != nil {
			return err
		}
		rep.add(fmt.Sprintf("env_%d_render_ms", n), round(float64(median.Microseconds())/1000, 2),
			fmt.Sprintf("a config env of %d entries through `agent render`, median of 11 (ms; target ≤ 50 for 55,000): %s", n, outcome))
	}
	b.stopAgent()
	b.stopAgent = func() {}
	live, peak, queued, refused, err := b.hostileQueue()
	if err != nil {
		return err
	}
	rep.add("hostile_queue_live_heap_mib", round(live, 1), fmt.Sprintf("agent live heap after %d requests of 1 MiB (~90,000 variables each) with one in-flight slot, %d queued, %d refused QueueFull (MiB; its limit 256)", hostileRequests, queued, refused))
	rep.add("hostile_queue_peak_rss_mib", round(peak, 1), "  the agent's peak RSS meanwhile, with the GC's soft limit its 256 MiB container gives it (GOMEMLIMIT 230 MiB) (MiB)")
	return nil
}
