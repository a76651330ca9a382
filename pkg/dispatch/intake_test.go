package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/magekube/magekube/pkg/protocol"
)

func TestIsIncomplete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data string
		want bool
	}{
		{"", true},
		{"   ", true},
		{`{"id": "r1", "kind"`, true},
		{`{"id": "r1"`, true},
		{`{"id": "r1"}`, false},
		{`{"id": r1}`, false}, // wrong, not cut short
		{`not json`, false},
	} {
		if got := isIncomplete([]byte(tc.data)); got != tc.want {
			t.Errorf("isIncomplete(%q) = %v, want %v", tc.data, got, tc.want)
		}
	}
}

// TestClaimSyncer: asking for a claim sync never waits (asks coalesce),
// and a sync asked for before the agent stops is made on its way out.
// The runs directory is closed, so the sync's attempt shows as its
// warning.
func TestClaimSyncer(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	v := openTestVolume(t, protocol.Layout{Root: t.TempDir()})
	v.runs.Close()
	a := &Agent{vol: v, log: slog.New(slog.NewTextHandler(&logs, nil)), claims: make(chan struct{}, 1)}
	a.claimsMade()
	a.claimsMade() // coalesces with the first
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.syncClaims(ctx) // returns: the agent is stopping
	if len(a.claims) != 0 {
		t.Error("a claim sync asked for before the stop is still pending")
	}
	if !strings.Contains(logs.String(), "sync claims") {
		t.Errorf("no claim sync was attempted on the way out; log: %s", logs.String())
	}
}

// TestAdmitsInOrder: a batch keeps its order whenever some of it, or of
// the runs before it, waits for an in-flight slot.
func TestAdmitsInOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		inflight, queued, batch int
		want                    bool
	}{
		{0, 0, 100, false}, // all fit: order decides nothing
		{90, 0, 10, false},
		{90, 0, 11, true}, // the last one queues
		{100, 0, 1, true},
		{0, 1, 1, true}, // runs queue already: the batch goes behind them in order
	} {
		a := &Agent{o: Options{MaxInflight: 100}, inflight: tc.inflight, queue: make([]string, tc.queued)}
		if got := a.admitsInOrder(tc.batch); got != tc.want {
			t.Errorf("in flight %d, queued %d, batch %d: admitsInOrder = %v, want %v", tc.inflight, tc.queued, tc.batch, got, tc.want)
		}
	}
}

// TestIntakeBookkeeping: a file named again while on its way in is
// taken once; files handed back in any order leave nothing behind, and
// one that had nothing to take can be seen again.
func TestIntakeBookkeeping(t *testing.T) {
	t.Parallel()
	a := &Agent{o: Options{MaxInflight: 1}, runs: map[string]*run{}, in: newIntakeState(), claims: make(chan struct{}, 1)}
	a.intake([]string{"r1.json", "r2.json", ".r3.json.tmp", "r1.json", "r3.json"})
	a.intake([]string{"r2.json"}) // a rescan while r2 is on its way in
	if got := len(a.in.toTake); got != 3 || len(a.in.seen) != 3 {
		t.Fatalf("%d files to take, %d on their way in; want 3 and 3", got, len(a.in.seen))
	}
	a.handOut()
	a.handOut()
	var items []*intakeItem
	for range 3 {
		items = append(items, <-a.in.work)
	}
	if len(a.in.work) != 0 || len(a.in.toTake) != 0 {
		t.Fatal("a file is handed out twice")
	}
	// In order (3 runs, 1 slot): the last one back admits all three.
	for _, i := range []int{2, 0, 1} {
		a.onTaken(context.Background(), items[i])
		if i == 2 && !(len(a.in.order) == 3 && !items[2].admitted) {
			t.Fatal("r3 was admitted before r1 and r2 were taken")
		}
	}
	if len(a.in.order) != 0 || len(a.in.seen) != 0 {
		t.Errorf("left behind: order %d, seen %v", len(a.in.order), a.in.seen)
	}
	a.intake([]string{"r1.json"}) // nothing was taken: a later event tries again
	if len(a.in.toTake) != 1 {
		t.Error("a file admitted with nothing taken cannot be seen again")
	}
}

// TestIntakeAdmitsAtOnce: when every run fits in the free slots, a file
// handed back is admitted at once, whatever the files seen before it
// (one take stuck on the disk holds up no other run), and the one still
// out is admitted once, when it comes back.
func TestIntakeAdmitsAtOnce(t *testing.T) {
	t.Parallel()
	a := &Agent{o: Options{MaxInflight: 100}, runs: map[string]*run{}, in: newIntakeState(), claims: make(chan struct{}, 1)}
	a.intake([]string{"r1.json", "r2.json", "r3.json"})
	a.handOut()
	items := []*intakeItem{<-a.in.work, <-a.in.work, <-a.in.work}
	a.onTaken(context.Background(), items[2])
	a.onTaken(context.Background(), items[1])
	if !items[2].admitted || !items[1].admitted || items[0].admitted {
		t.Fatalf("admitted r1 %v, r2 %v, r3 %v; want r2 and r3 while r1 is out", items[0].admitted, items[1].admitted, items[2].admitted)
	}
	if len(a.in.seen) != 1 || !a.in.seen["r1.json"] {
		t.Errorf("on their way in: %v, want r1 only", a.in.seen)
	}
	a.onTaken(context.Background(), items[0])
	if !items[0].admitted || len(a.in.order) != 0 || len(a.in.seen) != 0 {
		t.Errorf("left behind: order %d, seen %v", len(a.in.order), a.in.seen)
	}
}
