package main

import (
	"slices"
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

// TestMedian: the middle value, the mean of the two middle ones for an
// even count, and the input left as it was.
func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{13.7, -8.6, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(tc.in)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its input: %v", tc.in)
		}
	}
}
