package protocol

import "testing"

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
