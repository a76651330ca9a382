package main

import (
	"fmt"
	"time"
)

func (b *bench) throughput(n int) (created, finished float64, err error) {
	start := time.Now()
	ids, _ := b.submit(n)
	var lastCreated time.Time
	if err := b.waitTerminal(ids, 10*time.Minute); err != nil {
		return 0, 0, err
	}
	end := time.Now()
	b.mu.Lock()
	for _, id := range ids {
		if t := b.jobSeen[id]; t.After(lastCreated) {
			lastCreated = t
		}
	}
	b.mu.Unlock()
	return float64(n) / lastCreated.Sub(start).Seconds(), float64(n) / end.Sub(start).Seconds(), nil
}

// throughputSection: n runs requested at once, run and finished.
func (b *bench) throughputSection(sizes []int, rep *report) error {
	b.autoExit = true
	for _, n := range sizes {
		created, finished, err := b.throughput(n)
		if err != nil {
			return err
		}
		rep.add(fmt.Sprintf("throughput_%d_created_per_s", n), round(created, 1), fmt.Sprintf("throughput, %d runs requested at once: Jobs created per second", n))
		rep.add(fmt.Sprintf("throughput_%d_finished_per_s", n), round(finished, 1), fmt.Sprintf("throughput, %d runs: runs finished per second", n))
		rep.res["throughput_runs_per_s"] = round(created, 1)
	}
	return nil
}
