package dispatch

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/magekube/magekube/pkg/protocol"
)

// The last status put for a run is the one on disk once the writer is
// closed, for every run, whatever was coalesced on the way; a terminal
// status is written too (durably).
func TestStatusWriterNewestWins(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	w := newStatusWriter(l, slog.New(slog.DiscardHandler))
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
