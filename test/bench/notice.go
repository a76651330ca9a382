package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
)

// notice keeps n runs Running, then ends each at a recorded instant and
// measures when status.json turns terminal; in the same run a poller per
// Job reads its status every 5 s from the Job's creation, as Mage's
// executor does, and notes when it sees the end.
func (b *bench) notice(ctx context.Context, n int) (agent, poll []time.Duration, err error) {
	ids, _ := b.submit(n)
	for _, id := range ids {
		b.mu.Lock()
		b.running[id] = make(chan struct{})
		b.mu.Unlock()
	}
	for _, id := range ids {
		b.mu.Lock()
		ch := b.running[id]
		_, already := b.podOf[id]
		b.mu.Unlock()
		if !already {
			select {
			case <-ch:
			case <-time.After(3 * time.Minute):
				return nil, nil, fmt.Errorf("run %s never Running", id)
			}
		}
	}
	ended := make([]time.Time, n)
	var wg sync.WaitGroup
	polled := make([]time.Duration, n)
	for i, id := range ids {
		s, _ := protocol.ReadStatus(b.layout, id)
		job, err := b.client.BatchV1().Jobs(b.ns).Get(ctx, s.Job, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		// Mage's loop polls every 5 s from the create; its phase relative
		// to the block's end is what decides the delay.
		phase := time.Duration(rand.Int64N(int64(5 * time.Second)))
		wg.Go(func() {
			next := time.Now().Add(phase)
			for {
				time.Sleep(time.Until(next))
				j, err := b.client.BatchV1().Jobs(b.ns).Get(ctx, job.Name, metav1.GetOptions{})
				if err == nil && j.Status.Succeeded > 0 {
					polled[i] = time.Since(ended[i])
					return
				}
				next = next.Add(5 * time.Second)
			}
		})
	}
	time.Sleep(time.Second)
	for i, id := range ids {
		b.mu.Lock()
		pod, key := b.podOf[id], b.keyOf[id]
		b.mu.Unlock()
		ended[i] = time.Now()
		b.end(ctx, id, pod, key)
		time.Sleep(20 * time.Millisecond) // one at a time: no queueing in the figure
	}
	for i, id := range ids {
		for {
			s, err := protocol.ReadStatus(b.layout, id)
			if err == nil && s.Phase.Terminal() {
				agent = append(agent, s.UpdatedAt.Sub(ended[i]))
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Wait()
	return agent, polled, nil
}

// noticeSection: completion notice vs a 5 s poller, on 100 runs kept
// Running.
func (b *bench) noticeSection(ctx context.Context, rep *report) error {
	b.autoExit = false
	notice, poll, err := b.notice(ctx, 100)
	if err != nil {
		return err
	}
	rep.add("completion_notice_p50_ms", ms(pct(notice, 50)), "completion notice (result.json → terminal status.json), p50 (ms)")
	rep.add("completion_notice_p99_ms", ms(pct(notice, 99)), "completion notice, p99 (ms)")
	rep.add("poll_baseline_notice_mean_ms", ms(mean(poll)), "5 s poller (Mage's executor) notice, mean (ms)")
	rep.add("notice_speedup", round(float64(mean(poll))/float64(max(mean(notice), time.Microsecond)), 1), "notice speed-up (poller mean / agent mean)")
	return nil
}
