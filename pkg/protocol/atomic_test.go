package protocol

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "status.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFileAtomic(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only status.json, got %v", entries)
	}
}

func TestWriteFileAtomicFailsCleanly(t *testing.T) {
	t.Parallel()
	err := WriteFileAtomic(filepath.Join(t.TempDir(), "missing", "x"), nil, 0o644)
	if err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "result.json")
	sig := "SIGTERM"
	in := Result{ExitCode: 143, Signal: &sig, Reason: "Signaled", Attempt: 2}
	if err := WriteJSONAtomic(p, in); err != nil {
		t.Fatal(err)
	}
	var out Result
	if err := ReadJSON(p, &out); err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 143 || out.Signal == nil || *out.Signal != sig || out.Attempt != 2 {
		t.Errorf("round trip: %+v", out)
	}
}
