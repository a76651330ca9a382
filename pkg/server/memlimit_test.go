package server

import (
	"os"
	"path/filepath"
	"testing"
)

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
