package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/magekube/magekube/test/framework"
)

// scale runs the agent as its own process (for an honest RSS) with n
// Jobs Running, then restarts it and times list + adopt + ready.
func (b *bench) scale(ctx context.Context, n int) (rssMiB, idleCPU float64, ready time.Duration, err error) {
	stop, err := b.startAgent(b.agentClient, n+1)
	if err != nil {
		return 0, 0, 0, err
	}
	for done := 0; done < n; done += 1000 {
		ids, _ := b.submit(min(1000, n-done))
		deadline := time.Now().Add(5 * time.Minute)
		for _, id := range ids {
			for {
				b.mu.Lock()
				_, ok := b.jobSeen[id]
				b.mu.Unlock()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					stop()
					return 0, 0, 0, fmt.Errorf("scale: run %s has no Job", id)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	// Idle means every pod is Running and nothing moves.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		b.mu.Lock()
		running := len(b.podOf)
		b.mu.Unlock()
		if running >= n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return 0, 0, 0, fmt.Errorf("scale: %d of %d pods Running after 10 minutes", running, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	// The agent as a process: its RSS and CPU are its own.
	if _, err := framework.Binary("github.com/magekube/magekube/cmd/agent"); err != nil { // built before the clock starts
		return 0, 0, 0, err
	}
	start := time.Now()
	proc, err := b.startAgentProcess(n + 1)
	if err != nil {
		return 0, 0, 0, err
	}
	defer proc.stop()
	cmd, addr := proc.cmd, proc.addr
	ready = time.Since(start)
	time.Sleep(5 * time.Second)
	t0 := cpuTicks(cmd.Process.Pid)
	time.Sleep(10 * time.Second)
	idleCPU = round(float64(cpuTicks(cmd.Process.Pid)-t0)/100/10*100, 2)
	if b.profileDir != "" && addr != "" {
		if err := fetch("http://"+addr+"/debug/pprof/heap", filepath.Join(b.profileDir, "scale-agent-heap.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "heap profile:", err)
		}
	}
	return float64(peakRSS(cmd.Process.Pid)) / 1024, idleCPU, ready, nil
}

// agentProcess is the agent run as its own process (`agent run`), its
// output drained.
type agentProcess struct {
	cmd  *exec.Cmd
	addr string // its HTTP listener
}

func (p *agentProcess) stop() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

// startAgentProcess starts `agent run` for the bench's server pod and run
// directory, with env added to its environment, and returns once it is
// ready.
func (b *bench) startAgentProcess(maxInflight int, env ...string) (*agentProcess, error) {
	bin, err := framework.Binary("github.com/magekube/magekube/cmd/agent")
	if err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig", b.kubecfg, "--pod-name", b.pod.Name, "--pod-namespace", b.ns, "--dir", b.layout.Root,
		"--instance", "bench", "--kube-qps", "200", "--kube-burst", "400", "run", "--max-inflight", strconv.Itoa(maxInflight), "--listen", "127.0.0.1:0", "--log-format", "json", "--profiling"}
	start := time.Now()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MAGEKUBE_AGENT_CONTAINER=magekube-agent"), env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &agentProcess{cmd: cmd}
	readyRe := regexp.MustCompile(`"msg":"agent ready"`)
	addrRe := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	buf := make([]byte, 1<<16)
	var acc []byte
	for !readyRe.Match(acc) {
		k, rerr := out.Read(buf)
		acc = append(acc[max(0, len(acc)-4096):], buf[:k]...)
		if m := addrRe.FindSubmatch(acc); m != nil && p.addr == "" {
			p.addr = string(m[1])
		}
		if rerr != nil {
			p.stop()
			return nil, fmt.Errorf("agent: %v: %s", rerr, acc)
		}
		if time.Since(start) > 3*time.Minute {
			p.stop()
			return nil, fmt.Errorf("agent not ready after 3 minutes")
		}
	}
	if path := os.Getenv("MAGEKUBE_BENCH_AGENT_LOG"); path != "" { // the agent's log, for a bench under investigation
		if f, err := os.Create(path); err == nil {
			go func() { _, _ = io.Copy(f, out); f.Close() }()
			return p, nil
		}
	}
	go func() { _, _ = drain(out) }()
	return p, nil
}

// fetch saves the body of a GET.
func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func drain(r interface{ Read([]byte) (int, error) }) (int, error) {
	buf := make([]byte, 1<<16)
	for {
		if _, err := r.Read(buf); err != nil {
			return 0, err
		}
	}
}

// peakRSS is VmHWM in KiB.
func peakRSS(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// cpuTicks is utime+stime in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := regexp.MustCompile(`\) \S+ (.*)`).FindSubmatch(data)
	if f == nil {
		return 0
	}
	var fields []int
	for _, s := range regexp.MustCompile(`\s+`).Split(string(f[1]), -1) {
		v, _ := strconv.Atoi(s)
		fields = append(fields, v)
	}
	if len(fields) < 13 {
		return 0
	}
	return fields[10] + fields[11] // utime, stime (fields 14 and 15 of stat)
}

// scaleSection: Jobs tracked at once (kept Running), then a restart, on a
// fresh cluster so the Jobs the other sections left do not weigh on it.
func scaleSection(ctx context.Context, binDir, profileDir, project string, n int, interrupted <-chan os.Signal, rep *report) error {
	sb, stop, err := startBench(ctx, binDir, profileDir, project, "bench-scale", false, interrupted)
	if err != nil {
		return err
	}
	defer stop()
	rss, idleCPU, ready, err := sb.scale(ctx, n)
	if err != nil {
		return err
	}
	rep.add("scale_jobs", n, "scale: Jobs tracked at once")
	rep.add("rss_10k_mib", round(rss, 1), fmt.Sprintf("agent peak RSS with %d Jobs tracked (MiB)", n))
	rep.add("idle_cpu_percent", idleCPU, "agent CPU while idle with them (% of one core)")
	rep.add("restart_ready_10k_s", round(ready.Seconds(), 2), fmt.Sprintf("restart: list, adopt %d runs, ready (s)", n))
	return nil
}
