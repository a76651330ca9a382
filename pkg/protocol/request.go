package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// APIVersion is the only request version this package reads and writes.
const APIVersion = "magekube/v1"

// MaxRequestBytes bounds a request file; larger files are refused unread.
const MaxRequestBytes = 1 << 20

// Kind says whether a request runs one block or a whole pipeline.
type Kind string

// The two kinds of run Mage hands to an executor.
const (
	KindBlock    Kind = "block"
	KindPipeline Kind = "pipeline"
)

// Request is what the Mage server writes to requests/<id>.json.
type Request struct {
	APIVersion    string `json:"apiVersion"`
	ID            string `json:"id"`
	Kind          Kind   `json:"kind"`
	ProjectDir    string `json:"project_dir"`
	PipelineUUID  string `json:"pipeline_uuid"`
	BlockUUID     string `json:"block_uuid,omitempty"`
	PipelineRunID int64  `json:"pipeline_run_id,omitempty"`
	BlockRunID    int64  `json:"block_run_id,omitempty"`
	TriggerName   string `json:"trigger_name,omitempty"`
	// Attempt numbers a retry of the same Mage run (Mage's "retry" reuses
	// the block run id): 0 or 1 is the first attempt; a later attempt has
	// its own run id and Job name (suffix -a<N>).
	Attempt            int64          `json:"attempt,omitempty"`
	ExecutionPartition string         `json:"execution_partition,omitempty"`
	Command            []string       `json:"command,omitempty"`
	ExecutorConfig     map[string]any `json:"executor_config,omitempty"`
	Variables          map[string]any `json:"variables,omitempty"`
	// TraceParent, when set, makes the run's trace a child of the caller's
	// (W3C trace context).
	TraceParent string `json:"traceparent,omitempty"`
	// Env holds the values env_var() templates name, as the Mage process
	// sees them (envFrom and valueFrom included); only those names, never
	// the whole environment.
	Env map[string]string `json:"env,omitempty"`
}

// Identity is the request without what only building its Job needs
// (command, executor config, variables, env, paths): what a run with a Job
// keeps for its trace and status, so thousands of tracked runs do not
// hold their variables.
func (r *Request) Identity() *Request {
	return &Request{
		APIVersion: r.APIVersion, ID: r.ID, Kind: r.Kind, PipelineUUID: r.PipelineUUID, BlockUUID: r.BlockUUID,
		PipelineRunID: r.PipelineRunID, BlockRunID: r.BlockRunID, TriggerName: r.TriggerName, Attempt: r.Attempt,
		TraceParent: r.TraceParent,
	}
}

// ValidateID reports why id cannot name a run, or nil. Ids must be usable
// as a file name, a label value and part of a Job name: 1-63 characters of
// [A-Za-z0-9._-], starting and ending with a letter or digit, no "..".
func ValidateID(id string) error {
	if !validID(id) {
		return fmt.Errorf("id %q: must be 1-63 characters of [A-Za-z0-9._-], start and end with a letter or digit, and not contain \"..\"", id)
	}
	return nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 63 || strings.Contains(id, "..") {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && ((i == 0 || i == len(id)-1) || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// field decodes one known request field from its raw JSON.
type field struct {
	required func(*Request) bool
	decode   func(*Request, json.RawMessage) error
}

func always(*Request) bool        { return true }
func forBlock(r *Request) bool    { return r.Kind == KindBlock }
func forPipeline(r *Request) bool { return r.Kind == KindPipeline }

func into[T any](dst func(*Request) *T) func(*Request, json.RawMessage) error {
	return func(r *Request, raw json.RawMessage) error {
		return json.Unmarshal(raw, dst(r))
	}
}

var fields = map[string]field{
	"apiVersion":          {always, into(func(r *Request) *string { return &r.APIVersion })},
	"id":                  {always, into(func(r *Request) *string { return &r.ID })},
	"kind":                {always, into(func(r *Request) *Kind { return &r.Kind })},
	"project_dir":         {always, into(func(r *Request) *string { return &r.ProjectDir })},
	"pipeline_uuid":       {always, into(func(r *Request) *string { return &r.PipelineUUID })},
	"block_uuid":          {forBlock, into(func(r *Request) *string { return &r.BlockUUID })},
	"pipeline_run_id":     {forPipeline, into(func(r *Request) *int64 { return &r.PipelineRunID })},
	"block_run_id":        {forBlock, into(func(r *Request) *int64 { return &r.BlockRunID })},
	"trigger_name":        {nil, into(func(r *Request) *string { return &r.TriggerName })},
	"attempt":             {nil, into(func(r *Request) *int64 { return &r.Attempt })},
	"execution_partition": {nil, into(func(r *Request) *string { return &r.ExecutionPartition })},
	"command":             {nil, into(func(r *Request) *[]string { return &r.Command })},
	"executor_config":     {nil, into(func(r *Request) *map[string]any { return &r.ExecutorConfig })},
	"variables":           {nil, into(func(r *Request) *map[string]any { return &r.Variables })},
	"traceparent":         {nil, into(func(r *Request) *string { return &r.TraceParent })},
	"env":                 {nil, into(func(r *Request) *map[string]string { return &r.Env })},
}

// MaxEnv bounds Request.Env: names that templates use, not an environment.
const MaxEnv = 256

// MaxAttempt bounds Request.Attempt (its suffix keeps Job names short).
const MaxAttempt = 9999

// ErrTooLarge is returned for a request larger than MaxRequestBytes.
var ErrTooLarge = fmt.Errorf("request is larger than %d bytes", MaxRequestBytes)

// DecodeRequest reads one request strictly: unknown fields, wrong types,
// missing required fields and bad values are all reported in one error,
// each naming its JSON field. The returned request is nil on any problem.
func DecodeRequest(r io.Reader) (*Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if len(data) > MaxRequestBytes {
		return nil, ErrTooLarge
	}
	return ParseRequest(data)
}

// ParseRequest is DecodeRequest on bytes already in memory.
func ParseRequest(data []byte) (*Request, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("request is not a JSON object: %w", err)
	}
	if raw == nil {
		return nil, errors.New("request is not a JSON object: null")
	}
	req := &Request{}
	var errs []error
	for _, name := range sortedKeys(raw) {
		f, ok := fields[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown field", name))
			continue
		}
		if err := f.decode(req, raw[name]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", name, typeProblem(err)))
		}
	}
	for _, name := range sortedKeys(fields) {
		f := fields[name]
		if _, ok := raw[name]; !ok && f.required != nil && f.required(req) {
			errs = append(errs, fmt.Errorf("%s: required field is missing", name))
		}
	}
	errs = append(errs, req.validateValues(raw)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return req, nil
}

func (r *Request) validateValues(raw map[string]json.RawMessage) []error {
	var errs []error
	has := func(k string) bool { _, ok := raw[k]; return ok }
	if has("apiVersion") && r.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion: %q is not supported, want %q", r.APIVersion, APIVersion))
	}
	if has("id") {
		if err := ValidateID(r.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if has("kind") && r.Kind != KindBlock && r.Kind != KindPipeline {
		errs = append(errs, fmt.Errorf("kind: %q is not one of %q, %q", r.Kind, KindBlock, KindPipeline))
	}
	if has("project_dir") && (!path.IsAbs(r.ProjectDir) || path.Clean(r.ProjectDir) != r.ProjectDir) {
		errs = append(errs, fmt.Errorf("project_dir: %q must be a clean absolute path", r.ProjectDir))
	}
	for name, v := range map[string]string{"pipeline_uuid": r.PipelineUUID, "block_uuid": r.BlockUUID} {
		if has(name) && !safeName(v) {
			errs = append(errs, fmt.Errorf("%s: %q must be a non-empty name without '/', '\\\\', NUL or \"..\"", name, v))
		}
	}
	for name, v := range map[string]int64{"pipeline_run_id": r.PipelineRunID, "block_run_id": r.BlockRunID} {
		if has(name) && v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must not be negative", name, v))
		}
	}
	if has("attempt") && (r.Attempt < 0 || r.Attempt > MaxAttempt) {
		errs = append(errs, fmt.Errorf("attempt: %d must be from 0 to %d", r.Attempt, MaxAttempt))
	}
	if len(r.Env) > MaxEnv {
		errs = append(errs, fmt.Errorf("env: %d entries; the limit is %d", len(r.Env), MaxEnv))
	}
	if has("command") && len(r.Command) == 0 {
		errs = append(errs, errors.New("command: must not be empty when given"))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// safeName accepts Mage uuids (which may contain spaces, dots, dashes) but
// never anything that walks out of the project's pipelines directory.
func safeName(s string) bool {
	return s != "" && s != "." && !strings.Contains(s, "..") && !strings.ContainsAny(s, "/\\\x00")
}

func typeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)
	}
	return err.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
