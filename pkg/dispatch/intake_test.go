package dispatch

import (
	"slices"
	"testing"
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

// TestUnique: repeats go, the first order stays (a batch's admission
// order), and the caller's slice is not written.
func TestUnique(t *testing.T) {
	t.Parallel()
	in := []string{"b.json", "a.json", "b.json", "c.json", "a.json"}
	got := unique(in)
	if want := []string{"b.json", "a.json", "c.json"}; !slices.Equal(got, want) {
		t.Errorf("unique = %v, want %v", got, want)
	}
	if in[1] != "a.json" || in[2] != "b.json" {
		t.Errorf("unique wrote its input: %v", in)
	}
	if got := unique(nil); len(got) != 0 {
		t.Errorf("unique(nil) = %v", got)
	}
}
