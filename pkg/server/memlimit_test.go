package server

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestSetGCPercent: the agent's GOGC unless the environment sets one.
func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if !SetGCPercent() {
		t.Fatal("GOGC unset: the default not set")
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("GC percent %d, want %d", got, DefaultGCPercent)
	}
	t.Setenv("GOGC", "200")
	if SetGCPercent() {
		t.Error("GOGC set: the agent's default overrode it")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent changed to %d with GOGC set", got)
	}
}

func TestCgroupLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int64
	}{
		{"268435456\n", 268435456},
		{"max\n", 0},
		{"", 0},
		{"-1", 0},
	} {
		path := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := cgroupLimit(path); got != tc.want {
			t.Errorf("%q: got %d, want %d", tc.content, got, tc.want)
		}
	}
	if got := cgroupLimit(filepath.Join(dir, "absent")); got != 0 {
		t.Errorf("absent file: got %d", got)
	}
}
