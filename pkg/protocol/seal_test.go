package protocol

import (
	"encoding/json"
	"testing"
)

func TestSealResult(t *testing.T) {
	t.Parallel()
	r := Result{ExitCode: 0, Reason: "Completed", Attempt: 1, Pod: "p"}
	r.Seal = SealResult("job-uid", "run-1", r)
	if !ResultSealed("job-uid", "run-1", r) {
		t.Fatal("own seal rejected")
	}
	for name, tc := range map[string]struct {
		key, id string
		change  func(*Result)
	}{
		"other key":       {"other-uid", "run-1", nil},
		"no key":          {"", "run-1", nil},
		"other run":       {"job-uid", "run-2", nil},
		"exit code moved": {"job-uid", "run-1", func(r *Result) { r.ExitCode = 1 }},
		"reason changed":  {"job-uid", "run-1", func(r *Result) { r.Reason = "OOMKilled" }},
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
