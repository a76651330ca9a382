package dispatch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	now := time.Now()
	old := now.Add(-8 * 24 * time.Hour)
	run := func(id string, phase protocol.Phase, at time.Time) {
		t.Helper()
		if err := os.MkdirAll(l.RunDir(id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := protocol.WriteJSONAtomic(l.RunFile(id, protocol.StatusFile), protocol.Status{ID: id, Phase: phase}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{l.RunFile(id, protocol.StatusFile), l.RunDir(id)} {
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("old-done", protocol.PhaseSucceeded, old)
	run("old-running", protocol.PhaseRunning, old)
	run("new-done", protocol.PhaseFailed, now)
	run("old-done-fresh-log", protocol.PhaseSucceeded, old)
	run("old-forged-live", protocol.PhaseSucceeded, old) // a live run whose status a pod forged
	if err := os.WriteFile(l.RunFile("old-done-fresh-log", protocol.LogFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(l.RunDir("old-done-fresh-log"), old, old)
	rej := filepath.Join(l.Requests(), rejectedDir)
	if err := os.MkdirAll(rej, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, at := range map[string]time.Time{"old.json": old, "new.json": now} {
		p := filepath.Join(rej, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, at, at)
	}

	live := func(id string) bool { return id == "old-forged-live" }
	runs, rejected := prune(openTestVolume(t, l), now, DefaultRetention, live)
	if runs != 1 || rejected != 1 {
		t.Errorf("pruned %d runs and %d rejected requests, want 1 and 1", runs, rejected)
	}
	for id, kept := range map[string]bool{"old-done": false, "old-running": true, "new-done": true, "old-done-fresh-log": true, "old-forged-live": true} {
		if _, err := os.Stat(l.RunDir(id)); (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", id, err == nil, kept)
		}
	}
}

// BenchmarkPrune walks 10,000 finished runs none of which is due, the
// pruner's common hourly pass.
func BenchmarkPrune(b *testing.B) {
	l := protocol.Layout{Root: b.TempDir()}
	for i := range 10000 {
		id := "r" + string(rune('a'+i%26)) + "-" + itoa(i)
		if err := os.MkdirAll(l.RunDir(id), 0o755); err != nil {
			b.Fatal(err)
		}
		_ = protocol.ReplaceJSON(l.RunFile(id, protocol.StatusFile), protocol.Status{ID: id, Phase: protocol.PhaseSucceeded})
	}
	v := openTestVolume(b, l)
	b.ResetTimer()
	for b.Loop() {
		if runs, _ := prune(v, time.Now(), DefaultRetention, func(string) bool { return false }); runs != 0 {
			b.Fatal("pruned fresh runs")
		}
	}
}

func itoa(i int) string { return fmt.Sprint(i) }
