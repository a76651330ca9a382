package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const validBlock = `{"apiVersion":"magekube/v1","id":"blk-42","kind":"block","project_dir":"/home/src/default_repo",
 "pipeline_uuid":"etl","block_uuid":"load","pipeline_run_id":7,"block_run_id":42}`

func TestParseRequestValid(t *testing.T) {
	t.Parallel()
	req, err := ParseRequest([]byte(validBlock))
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != "blk-42" || req.Kind != KindBlock || req.BlockRunID != 42 || req.PipelineRunID != 7 {
		t.Errorf("decoded %+v", req)
	}
	pipe := `{"apiVersion":"magekube/v1","id":"p","kind":"pipeline","project_dir":"/p","pipeline_uuid":"etl","pipeline_run_id":3,
	 "command":["sh","-c","true"],"executor_config":{"pod":{"node_selector":{"a":"b"}}},"variables":{"x":1},"attempt":2,"trigger_name":"daily"}`
	full, err := ParseRequest([]byte(pipe))
	if err != nil {
		t.Fatalf("pipeline request: %v", err)
	}
	id := full.Identity()
	if id.ID != "p" || id.Kind != KindPipeline || id.PipelineUUID != "etl" || id.PipelineRunID != 3 || id.Attempt != 2 || id.TriggerName != "daily" {
		t.Errorf("identity lost a field: %+v", id)
	}
	if id.Command != nil || id.ExecutorConfig != nil || id.Variables != nil || id.ProjectDir != "" {
		t.Errorf("identity keeps what only the Job needed: %+v", id)
	}
}

func TestParseRequestReportsEveryProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"not json", `{"id":`, []string{"request is not a JSON object"}},
		{"array", `[1]`, []string{"request is not a JSON object"}},
		{"null", `null`, []string{"request is not a JSON object: null"}},
		{"unknown and missing", `{"apiVersion":"magekube/v1","id":"a","kind":"block","projet_dir":"/x"}`, []string{
			"projet_dir: unknown field",
			"project_dir: required field is missing",
			"pipeline_uuid: required field is missing",
			"block_uuid: required field is missing",
			"block_run_id: required field is missing",
		}},
		{"wrong types", `{"apiVersion":"magekube/v1","id":7,"kind":"block","project_dir":"/p","pipeline_uuid":"e","block_uuid":"l","block_run_id":"42","command":"echo hi"}`, []string{
			"id: expected string, got JSON number",
			"block_run_id: expected int64, got JSON string",
			"command: expected []string, got JSON string",
		}},
		{"bad values", `{"apiVersion":"magekube/v2","id":"../x","kind":"job","project_dir":"rel/dir","pipeline_uuid":"../etc"}`, []string{
			`apiVersion: "magekube/v2" is not supported`,
			`id "../x": must be`,
			`kind: "job" is not one of`,
			`project_dir: "rel/dir" must be a clean absolute path`,
			`pipeline_uuid: "../etc" must be a non-empty name`,
		}},
		{"pipeline needs run id", `{"apiVersion":"magekube/v1","id":"p","kind":"pipeline","project_dir":"/p","pipeline_uuid":"e"}`, []string{
			"pipeline_run_id: required field is missing",
		}},
		{"empty command", `{"apiVersion":"magekube/v1","id":"p","kind":"pipeline","project_dir":"/p","pipeline_uuid":"e","pipeline_run_id":1,"command":[]}`, []string{
			"command: must not be empty",
		}},
		{"attempt out of range", `{"apiVersion":"magekube/v1","id":"p","kind":"pipeline","project_dir":"/p","pipeline_uuid":"e","pipeline_run_id":1,"attempt":10000}`, []string{
			"attempt: 10000 must be from 0 to 9999",
		}},
		{"negative run id", `{"apiVersion":"magekube/v1","id":"p","kind":"pipeline","project_dir":"/p","pipeline_uuid":"e","pipeline_run_id":-1}`, []string{
			"pipeline_run_id: -1 must not be negative",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := ParseRequest([]byte(tc.in))
			if err == nil || req != nil {
				t.Fatalf("want an error, got %+v", req)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDecodeRequestSizeLimit(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte(" "), MaxRequestBytes+1)
	if _, err := DecodeRequest(bytes.NewReader(big)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("want ErrTooLarge, got %v", err)
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{
		"blk-42": true, "a": true, "A.b_c-9": true, strings.Repeat("a", 63): true,
		"": false, "..": false, "a..b": false, ".hidden": false, "a/b": false, `a\b`: false,
		"a b": false, "-a": false, "a-": false, strings.Repeat("a", 64): false, "ü": false, "a\x00": false,
	} {
		if err := ValidateID(id); (err == nil) != ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"blk-1.json": "blk-1", ".blk-1.json.tmp": "", "blk-1.json.tmp": "", ".x.json": "", "x.txt": ""} {
		got, ok := RequestID(name)
		if got != want || ok != (want != "") {
			t.Errorf("RequestID(%q) = %q, %v", name, got, ok)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(validBlock))
	f.Add([]byte(`{"id":"../../etc","kind":"pipeline"}`))
	f.Add([]byte(`{"executor_config":{"pod":null},"variables":[1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data)
		if (req == nil) == (err == nil) {
			t.Fatalf("exactly one of request and error must be set: %v %v", req, err)
		}
		if req != nil {
			if ValidateID(req.ID) != nil {
				t.Fatalf("accepted bad id %q", req.ID)
			}
			if req.Kind != KindBlock && req.Kind != KindPipeline {
				t.Fatalf("accepted kind %q", req.Kind)
			}
		}
	})
}
