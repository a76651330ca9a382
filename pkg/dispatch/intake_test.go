package dispatch

import "testing"

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
