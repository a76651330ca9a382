package main

import (
	"testing"
	"time"
)

// TestLastLogTime: a pod's end on real nodes is its last log line's
// timestamp, as the kubelet serves a log read with timestamps.
func TestLastLogTime(t *testing.T) {
	t.Parallel()
	logs := "2026-11-29T15:04:01.123456789Z DBT library not installed.\n2026-11-29T15:04:03.5Z Pipeline run completed.\n"
	got, ok := lastLogTime([]byte(logs))
	if want := time.Date(2026, 11, 29, 15, 4, 3, 5e8, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("lastLogTime = %v, %v; want %v", got, ok, want)
	}
	for _, bad := range []string{"", "no timestamp here\n"} {
		if _, ok := lastLogTime([]byte(bad)); ok {
			t.Errorf("lastLogTime(%q) found a time", bad)
		}
	}
}
