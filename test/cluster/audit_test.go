package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCountRequests reads an audit log as the API server writes it (one
// JSON event per line, metadata level): the window, the filter and the
// grouping by verb and resource; PerRun divides and orders them.
func TestCountRequests(t *testing.T) {
	t.Parallel()
	lines := []string{
		`{"kind":"Event","verb":"create","user":{"username":"system:serviceaccount:a:mage"},"userAgent":"magekube-agent/dev","objectRef":{"resource":"jobs","namespace":"a"},"requestReceivedTimestamp":"2026-12-07T06:00:01.000000Z"}`,
		`{"kind":"Event","verb":"create","user":{"username":"system:serviceaccount:a:mage"},"userAgent":"magekube-agent/dev","objectRef":{"resource":"events","namespace":"a"},"requestReceivedTimestamp":"2026-12-07T06:00:02.000000Z"}`,
		`{"kind":"Event","verb":"get","user":{"username":"system:serviceaccount:a:mage"},"userAgent":"magekube-agent/dev","objectRef":{"resource":"pods","subresource":"log","namespace":"a"},"requestReceivedTimestamp":"2026-12-07T06:00:03.000000Z"}`,
		`{"kind":"Event","verb":"create","user":{"username":"system:serviceaccount:b:mage"},"userAgent":"OpenAPI-Generator/33.1.0/python","objectRef":{"resource":"jobs","namespace":"b"},"requestReceivedTimestamp":"2026-12-07T06:00:02.000000Z"}`,
		`{"kind":"Event","verb":"create","user":{"username":"system:serviceaccount:a:mage"},"userAgent":"magekube-agent/dev","objectRef":{"resource":"jobs","namespace":"a"},"requestReceivedTimestamp":"2026-12-07T06:09:00.000000Z"}`,
		`not json`,
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	n, by, err := CountRequests(path, from, from.Add(time.Minute), func(ev AuditEvent) bool { return strings.HasPrefix(ev.User.Username, "system:serviceaccount:a:") })
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || by["create jobs"] != 1 || by["create events"] != 1 || by["get pods/log"] != 1 {
		t.Errorf("CountRequests = %d %v, want 3: one create jobs, create events, get pods/log", n, by)
	}
	if got, want := PerRun(map[string]int{"get jobs": 379, "create jobs": 100, "delete jobs": 100}, 100), "get jobs 3.79, create jobs 1, delete jobs 1"; got != want {
		t.Errorf("PerRun = %q, want %q", got, want)
	}
	if _, _, err := CountRequests(filepath.Join(t.TempDir(), "none"), from, from, func(AuditEvent) bool { return true }); err == nil {
		t.Error("a missing audit log counted")
	}
}
