package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/protocol"
)

// burstRounds is how many bursts of 100 (and bare-client floors) the
// dispatch figures pool; sameMomentRounds how many bursts at the same
// moment as the bare client the overhead is the median of. Single bursts
// range from −15% to +76% in one run; the median of 20 moves less from
// run to run than the median of 10.
const (
	burstRounds      = 10
	sameMomentRounds = 20
)

// createTimes records, per run, when the agent sent its Job create and
// when the API server answered: request → sent is the agent's share of
// the dispatch latency, sent → answered the API server's.
type createTimes struct {
	mu             sync.Mutex
	sent, answered map[string]time.Time
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *createTimes) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/jobs") || r.GetBody == nil {
			return next.RoundTrip(r)
		}
		sent := time.Now()
		resp, err := next.RoundTrip(r)
		answered := time.Now()
		// Which run: read from the body once the create is answered, so
		// the bench's decoding never delays the agent's request.
		id := ""
		if body, err := r.GetBody(); err == nil {
			data, _ := io.ReadAll(body)
			if obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil); err == nil {
				if job, ok := obj.(*batchv1.Job); ok {
					id = job.Labels[jobspec.LabelRun]
				}
			}
		}
		c.mu.Lock()
		if c.sent == nil {
			c.sent, c.answered = map[string]time.Time{}, map[string]time.Time{}
		}
		c.sent[id], c.answered[id] = sent, answered
		c.mu.Unlock()
		return resp, err
	})
}

// split returns, for runs requested at the given times, the agent's share
// (request → create sent) and the API server's (sent → answered).
func (c *createTimes) split(ids []string, at []time.Time) (agent, api []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if s, ok := c.sent[id]; ok {
			agent = append(agent, s.Sub(at[i]))
			api = append(api, c.answered[id].Sub(s))
		}
	}
	return agent, api
}

// floor creates n Jobs, built as the agent builds them, at once with a
// bare client and returns request → Job seen for each: what the API
// server and the watch alone cost.
func (b *bench) floor(ctx context.Context, n int) ([]time.Duration, error) {
	jobs, err := b.floorJobs(n)
	if err != nil {
		return nil, err
	}
	at, err := b.createAll(ctx, jobs)
	if err != nil {
		return nil, err
	}
	return b.awaitFloor(jobs, at)
}

// floorJobs builds n Jobs as the agent builds them, for runs of their own,
// under an instance label of their own: the agent's informers select its
// instance's Jobs and pods, so the API server never sends it these, as
// it would never send a deployed agent another client's Jobs. (With the
// agent's label, the agent decoded and cached the bare client's Jobs and
// pods in the middle of its own burst.) The bench's watch sees both.
func (b *bench) floorJobs(n int) ([]*batchv1.Job, error) {
	builder := b.builder()
	builder.Settings.Instance = "bench-floor"
	jobs := make([]*batchv1.Job, n)
	for i := range jobs {
		b.n++
		req, err := protocol.ParseRequest(b.request(fmt.Sprintf("floor-%d", b.n), b.n))
		if err != nil {
			return nil, err
		}
		if jobs[i], err = builder.Build(b.pod, req); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// createAll creates the Jobs at once with the bench's bare client and
// returns when each create was sent.
func (b *bench) createAll(ctx context.Context, jobs []*batchv1.Job) ([]time.Time, error) {
	at := make([]time.Time, len(jobs))
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() {
			at[i] = time.Now()
			_, err := b.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
	}
	return at, nil
}

// awaitFloor returns, for each Job, create sent → Job seen by the watch,
// once every Job has completed (the next burst starts on a quiet cluster).
func (b *bench) awaitFloor(jobs []*batchv1.Job, at []time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, len(jobs))
	deadline := time.Now().Add(5 * time.Minute)
	for i, job := range jobs {
		for {
			b.mu.Lock()
			seen, ok := b.jobSeen[job.Labels[jobspec.LabelRun]]
			done := b.jobDone[job.Labels[jobspec.LabelRun]]
			b.mu.Unlock()
			if ok && done {
				out[i] = seen.Sub(at[i])
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("floor: job %s not seen and completed", job.Name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return out, nil
}

// sameMoment starts a burst of n requests to the agent and n Jobs created
// by the bare client at the same moment, so both meet the same API
// server, and returns both sides' latencies (request → Job seen; the
// agent runs as its own process, so its share is not split out).
func (b *bench) sameMoment(ctx context.Context, n int) ([]time.Duration, []time.Duration, error) {
	jobs, err := b.floorJobs(n)
	if err != nil {
		return nil, nil, err
	}
	var at []time.Time
	var createErr error
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		at, createErr = b.createAll(ctx, jobs)
	})
	close(start)
	ids, _, total, err := b.dispatched(n)
	if err == nil {
		err = b.waitTerminal(ids, 10*time.Minute)
	}
	wg.Wait()
	if err == nil {
		err = createErr
	}
	if err != nil {
		return nil, nil, err
	}
	floor, err := b.awaitFloor(jobs, at)
	return total, floor, err
}

// dispatchTimes are one set of dispatch latencies: request → Job seen,
// and its parts request → create sent (the agent) and sent → answered
// (the API server).
type dispatchTimes struct{ total, agent, api []time.Duration }

func (d *dispatchTimes) append(o dispatchTimes) {
	d.total, d.agent, d.api = append(d.total, o.total...), append(d.agent, o.agent...), append(d.api, o.api...)
}

// burst requests n runs at once and returns their dispatch latencies,
// split where the agent's creates are timed (in this process), once
// every run has finished.
func (b *bench) burst(n int) (dispatchTimes, error) {
	ids, at, total, err := b.dispatched(n)
	if err != nil {
		return dispatchTimes{}, err
	}
	agent, api := b.creates.split(ids, at)
	return dispatchTimes{total: total, agent: agent, api: api}, b.waitTerminal(ids, 10*time.Minute)
}

// dispatched requests n runs at once and returns their ids, when each was
// requested, and request → Job seen for each.
func (b *bench) dispatched(n int) ([]string, []time.Time, []time.Duration, error) {
	ids, at := b.submit(n)
	deadline := time.Now().Add(5 * time.Minute)
	var out []time.Duration
	for i := 0; i < len(ids); {
		b.mu.Lock()
		seen, ok := b.jobSeen[ids[i]]
		b.mu.Unlock()
		if ok {
			out = append(out, seen.Sub(at[i]))
			i++
			continue
		}
		if time.Now().After(deadline) {
			return nil, nil, nil, fmt.Errorf("run %s: no Job after 5 minutes", ids[i])
		}
		time.Sleep(time.Millisecond)
	}
	return ids, at, out, nil
}

func (b *bench) waitTerminal(ids []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			if s, err := protocol.ReadStatus(b.layout, id); err == nil && s.Phase.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("run %s not finished after %s", id, within)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// dispatchSection: request renamed into requests/ → Job seen, single and
// in bursts, against a bare client creating the same Jobs.
func (b *bench) dispatchSection(ctx context.Context, profileDir string, rep *report) error {
	b.autoExit = true
	stopProfile, err := b.profile(ctx, profileDir, "dispatch")
	if err != nil {
		return err
	}
	var single dispatchTimes
	for range 20 {
		d, err := b.burst(1)
		if err != nil {
			return err
		}
		single.append(d)
	}
	rep.add("dispatch_single_p50_ms", ms(pct(single.total, 50)), "dispatch latency (request renamed → Job seen), single request, p50 (ms)")
	rep.add("dispatch_single_p99_ms", ms(pct(single.total, 99)), "dispatch latency, single request, p99 (ms)")
	rep.add("dispatch_single_agent_p99_ms", ms(pct(single.agent, 99)), "  agent's share (request → create sent), single, p99 (ms)")
	// Bursts of 100, each followed by the same 100 Jobs created at once
	// by a bare client with no agent, measured the same way: the API
	// server's own share. Rounds interleave so both see the same cluster.
	var burst100 dispatchTimes
	var floor100 []time.Duration
	for range burstRounds {
		d, err := b.burst(100)
		if err != nil {
			return err
		}
		burst100.append(d)
		f, err := b.floor(ctx, 100)
		if err != nil {
			return err
		}
		floor100 = append(floor100, f...)
	}
	rep.add("dispatch_burst100_p50_ms", ms(pct(burst100.total, 50)), fmt.Sprintf("dispatch latency, burst of 100 (%d bursts), p50 (ms)", burstRounds))
	rep.add("dispatch_burst100_p99_ms", ms(pct(burst100.total, 99)), "dispatch latency, burst of 100, p99 (ms)")
	rep.res["dispatch_p99_ms"] = ms(pct(burst100.total, 99))
	rep.add("dispatch_burst100_agent_p50_ms", ms(pct(burst100.agent, 50)), "  agent's share (request → create sent), burst of 100, p50 (ms)")
	rep.add("dispatch_burst100_agent_p99_ms", ms(pct(burst100.agent, 99)), "  agent's share, burst of 100, p99 (ms)")
	rep.add("dispatch_burst100_api_p99_ms", ms(pct(burst100.api, 99)), "  API server's share (create sent → answered), burst of 100, p99 (ms)")
	rep.add("api_floor_burst100_p50_ms", ms(pct(floor100, 50)), "API server alone: 100 Jobs created at once by a bare client, p50 (ms)")
	rep.add("api_floor_burst100_p99_ms", ms(pct(floor100, 99)), "API server alone: 100 Jobs created at once by a bare client, p99 (ms)")
	rep.add("dispatch_overhead_alternating_p99_pct", overheadPct(pct(burst100.total, 99), pct(floor100, 99)), "agent's dispatch over the bare client, bursts of 100 one after the other, p99 (%)")
	// The agent's added latency over a bare client creating the same Jobs
	// at the same moment, against the same API server (target: within 10%
	// at p99). The agent runs as its own process here, as deployed: in
	// this one the bare client's 100 goroutines and the watch's decoding
	// would share its Go scheduler's two threads, which no deployment
	// does (its share of each create is not split out here). Each burst
	// is one comparison, its p50 and p99 against the bare client's in
	// that burst; the figure is the median burst's. Pooled over all
	// bursts, p99 is the slowest 10 creates of 1,000, which come from one
	// or two bursts and follow their luck on either side (−11% to +35%
	// over eight runs of similar code); it is printed too.
	var same, sameFloor []time.Duration
	var over50, over99 []float64
	if err := b.useAgent(false, agentInflight); err != nil {
		return err
	}
	for range sameMomentRounds {
		d, f, err := b.sameMoment(ctx, 100)
		if err != nil {
			return err
		}
		same = append(same, d...)
		sameFloor = append(sameFloor, f...)
		over50 = append(over50, overheadPct(pct(d, 50), pct(f, 50)))
		over99 = append(over99, overheadPct(pct(d, 99), pct(f, 99)))
	}
	if err := b.useAgent(true, agentInflight); err != nil {
		return err
	}
	rep.add("dispatch_same_moment_p50_ms", ms(pct(same, 50)), fmt.Sprintf("burst of 100 to the agent while a bare client creates 100 Jobs (%d rounds): the agent's, p50 (ms)", sameMomentRounds))
	rep.add("dispatch_same_moment_p99_ms", ms(pct(same, 99)), "  the agent's, p99 (ms)")
	rep.add("api_same_moment_p50_ms", ms(pct(sameFloor, 50)), "  the bare client's, p50 (ms)")
	rep.add("api_same_moment_p99_ms", ms(pct(sameFloor, 99)), "  the bare client's, p99 (ms)")
	rep.add("dispatch_overhead_bursts_p99_pct", over99, "  the agent's p99 over the bare client's in each burst (%)")
	rep.add("dispatch_overhead_p50_pct", median(over50), "agent's dispatch over the bare client at the same moment, p50, the median burst (%)")
	rep.add("dispatch_overhead_p99_pct", median(over99), "agent's dispatch over the bare client at the same moment, p99, the median burst (%; target ≤ 10)")
	rep.add("dispatch_overhead_pooled_p50_pct", overheadPct(pct(same, 50), pct(sameFloor, 50)), "  the same pooled over all bursts, p50 (%)")
	rep.add("dispatch_overhead_pooled_p99_pct", overheadPct(pct(same, 99), pct(sameFloor, 99)), "  the same pooled over all bursts, p99 (%)")
	d, err := b.burst(1000)
	if err != nil {
		return err
	}
	rep.add("dispatch_burst1000_p50_ms", ms(pct(d.total, 50)), "dispatch latency, burst of 1000, p50 (ms)")
	rep.add("dispatch_burst1000_p99_ms", ms(pct(d.total, 99)), "dispatch latency, burst of 1000, p99 (ms)")
	rep.add("dispatch_burst1000_agent_p99_ms", ms(pct(d.agent, 99)), "  agent's share, burst of 1000, p99 (ms)")
	if err := stopProfile(); err != nil {
		return err
	}
	return nil
}
