package protocol

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSealResult(t *testing.T) {
	t.Parallel()
	start := time.Now()
	sig := "SIGTERM"
	r := Result{ExitCode: 0, Reason: "Completed", Attempt: 1, Pod: "p", Message: "done", Signal: &sig,
		StartedAt: start.UTC(), FinishedAt: start.Add(time.Second).UTC(), DurationSeconds: 1.000123, TraceID: "abc"}
	r.Seal = SealResult("job-uid", "run-1", r)
	if !ResultSealed("job-uid", "run-1", r) {
		t.Fatal("own seal rejected")
	}
	// As the agent reads it: through the file's JSON.
	data, _ := json.Marshal(r)
	var read Result
	if err := json.Unmarshal(data, &read); err != nil || !ResultSealed("job-uid", "run-1", read) {
		t.Fatalf("own seal rejected after a JSON round trip: %v", err)
	}
	other := "SIGKILL"
	for name, tc := range map[string]struct {
		key, id string
		change  func(*Result)
	}{
		"other key":       {"other-uid", "run-1", nil},
		"no key":          {"", "run-1", nil},
		"other run":       {"job-uid", "run-2", nil},
		"exit code moved": {"job-uid", "run-1", func(r *Result) { r.ExitCode = 1 }},
		"reason changed":  {"job-uid", "run-1", func(r *Result) { r.Reason = "OOMKilled" }},
		"message changed": {"job-uid", "run-1", func(r *Result) { r.Message = "forged" }},
		"times moved":     {"job-uid", "run-1", func(r *Result) { r.FinishedAt = r.FinishedAt.Add(time.Hour) }},
		"trace changed":   {"job-uid", "run-1", func(r *Result) { r.TraceID = "def" }},
		"signal changed":  {"job-uid", "run-1", func(r *Result) { r.Signal = &other }},
		"duration moved":  {"job-uid", "run-1", func(r *Result) { r.DurationSeconds = 2 }},
		"no seal":         {"job-uid", "run-1", func(r *Result) { r.Seal = "" }},
	} {
		c := r
		if tc.change != nil {
			tc.change(&c)
		}
		if ResultSealed(tc.key, tc.id, c) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzResultFile decodes whatever a pod may write as result.json: no
// input panics, and none carries the seal of a key it was not sealed with.
func FuzzResultFile(f *testing.F) {
	f.Add([]byte(`{"exit_code":0,"reason":"Completed","attempt":1,"seal":"00"}`), "run-1")
	f.Add([]byte(`{"exit_code":"0"}`), "x")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		var r Result
		if json.Unmarshal(data, &r) != nil {
			return
		}
		if ResultSealed("the-job-uid", id, r) && r.Seal != SealResult("the-job-uid", id, r) {
			t.Fatal("a seal verified that was not the key's")
		}
		r.Seal = SealResult("other-uid", id, r)
		if ResultSealed("the-job-uid", id, r) {
			t.Fatal("another key's seal verified")
		}
	})
}
