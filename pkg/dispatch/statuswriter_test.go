package dispatch

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/magekube/magekube/pkg/protocol"
)

// The last status put for a run is the one on disk once the writer is
// closed, for every run, whatever was coalesced on the way; a terminal
// status is written too (durably).
func TestStatusWriterNewestWins(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	w := newStatusWriter(openTestVolume(t, l), slog.New(slog.DiscardHandler))
	const runs, puts = 20, 50
	for i := range runs {
		id := fmt.Sprintf("r%d", i)
		if err := os.MkdirAll(l.RunDir(id), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for n := range puts {
		for i := range runs {
			st := protocol.Status{ID: fmt.Sprintf("r%d", i), Phase: protocol.PhaseRunning, Message: fmt.Sprint(n)}
			if n == puts-1 {
				st.Phase = protocol.PhaseSucceeded
			}
			w.put(st)
		}
	}
	w.close()
	for i := range runs {
		st, err := protocol.ReadStatus(l, fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase != protocol.PhaseSucceeded || st.Message != fmt.Sprint(puts-1) || st.UpdatedAt.IsZero() {
			t.Errorf("r%d: %+v, want the last status put", i, st)
		}
	}
}

// TestFinalStatusSurvivesAFullVolume: a final status that cannot be
// written (the volume is full) is written once space is freed. As root
// the volume is a real 256 KiB tmpfs filled to the last byte; elsewhere
// the run directory is missing at first.
func TestFinalStatusSurvivesAFullVolume(t *testing.T) {
	root := t.TempDir()
	l := protocol.Layout{Root: root}
	if err := os.MkdirAll(l.RunDir("r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var free func() // makes the write possible again
	fullDisk := os.Geteuid() == 0 && exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", root).Run() == nil
	if fullDisk {
		t.Cleanup(func() { _ = exec.Command("umount", root).Run() })
		if err := os.MkdirAll(l.RunDir("r1"), 0o755); err != nil {
			t.Fatal(err)
		}
		filler := filepath.Join(root, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = f.Write(make([]byte, 4096))
		}
		f.Close()
		free = func() { _ = os.Remove(filler) }
	} else {
		if err := os.RemoveAll(l.Runs()); err != nil {
			t.Fatal(err)
		}
		free = func() { _ = os.MkdirAll(l.RunDir("r1"), 0o755) }
	}
	w := newStatusWriter(openTestVolume(t, l), slog.New(slog.DiscardHandler))
	defer w.close()
	w.put(protocol.Status{ID: "r1", Phase: protocol.PhaseSucceeded})
	time.Sleep(300 * time.Millisecond)
	if _, err := protocol.ReadStatus(l, "r1"); err == nil {
		t.Fatal("the status was written to a full volume")
	}
	free()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := protocol.ReadStatus(l, "r1")
		if err == nil && st.Phase == protocol.PhaseSucceeded {
			t.Logf("written after space was freed (real full tmpfs: %v)", fullDisk)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("final status not written 10 s after space was freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatusHold: a non-final status waits out the hold (a newer one
// replaces it), a final one is written at once, even over a held one,
// and close writes what is still held.
func TestStatusHold(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	for _, id := range []string{"r1", "r2", "r3"} {
		if err := os.MkdirAll(l.RunDir(id), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := newStatusWriter(openTestVolume(t, l), slog.New(slog.DiscardHandler))
	w.hold = 200 * time.Millisecond
	start := time.Now()
	w.put(protocol.Status{ID: "r1", Phase: protocol.PhaseQueued})
	w.put(protocol.Status{ID: "r1", Phase: protocol.PhaseDispatched})
	w.put(protocol.Status{ID: "r2", Phase: protocol.PhaseRunning})
	w.put(protocol.Status{ID: "r2", Phase: protocol.PhaseSucceeded})
	waitPhase := func(id string, want protocol.Phase) time.Duration {
		t.Helper()
		for time.Since(start) < 10*time.Second {
			if st, err := protocol.ReadStatus(l, id); err == nil && st.Phase == want {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%s: never %s", id, want)
		return 0
	}
	if took := waitPhase("r2", protocol.PhaseSucceeded); took >= w.hold {
		t.Errorf("final status written after %s, over the hold", took)
	}
	if took := waitPhase("r1", protocol.PhaseDispatched); took < w.hold {
		t.Errorf("held status written after %s, before the hold %s", took, w.hold)
	}
	if _, err := os.Stat(l.RunFile("r1", protocol.StatusFile)); err != nil {
		t.Fatal(err)
	}
	w.hold = time.Hour
	w.put(protocol.Status{ID: "r3", Phase: protocol.PhaseRunning})
	w.close()
	if st, err := protocol.ReadStatus(l, "r3"); err != nil || st.Phase != protocol.PhaseRunning {
		t.Errorf("close left a held status unwritten: %+v, %v", st, err)
	}
}
