package execconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Level is one layer of configuration, lowest precedence first when
// passed to Resolve.
type Level struct {
	// Source names where it came from: a file relative to the project
	// directory, or "request".
	Source string
	// Path is the field path of the config inside the source, e.g.
	// k8s_executor_config or blocks[load].executor_config.
	Path string
	// Values is the decoded YAML/JSON mapping; nil for an absent level.
	Values map[string]any
}

// Resolve renders, checks and deep-merges the levels (lowest precedence
// first), then decodes and validates the result. Every problem of every
// level is reported at once, each naming its source and field path.
func Resolve(levels []Level, vars Vars) (*Config, error) {
	var errs []error
	merged := map[string]any{}
	configType := reflect.TypeFor[Config]()
	for _, l := range levels {
		if l.Values == nil {
			continue
		}
		// A list over the cap fails the level before anything is copied,
		// rendered or decoded: each of those costs as much as the list.
		if long := longLists(l, l.Path, l.Values); len(long) > 0 {
			errs = append(errs, long...)
			continue
		}
		c := &checker{source: l.Source}
		values := deepCopy(l.Values).(map[string]any)
		renderTree(c, l.Path, values, vars)
		c.walk(l.Path, values, configType)
		// Bad values were dropped by the walk: validate what is left, so
		// that one run reports every problem of the level.
		errs = append(errs, c.errs...)
		errs = append(errs, validateLevel(l, values))
		merged = Merge(merged, values)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg, err := decode(merged)
	if err != nil {
		return nil, err
	}
	cfg.JobNamePrefix = strings.ReplaceAll(cfg.JobNamePrefix, "{trigger_name}", cleanTrigger(vars.TriggerName))
	if err := cfg.validate("merged executor config", ""); err != nil {
		return nil, err
	}
	return cfg, nil
}

// longLists fails every list in v over MaxListLen, by its path: one walk
// of the tree, nothing copied.
func longLists(l Level, path string, v any) []error {
	var errs []error
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, ok := e.(map[string]any); ok || isList(e) {
				errs = append(errs, longLists(l, child(path, k), e)...)
			}
		}
	case []any:
		if len(x) > MaxListLen {
			return []error{&FieldError{Source: l.Source, Path: path, Problem: fmt.Sprintf("has %d entries; the limit is %d", len(x), MaxListLen)}}
		}
		for i, e := range x {
			if _, ok := e.(map[string]any); ok || isList(e) {
				errs = append(errs, longLists(l, index(path, i), e)...)
			}
		}
	}
	return errs
}

func isList(v any) bool { _, ok := v.([]any); return ok }

// validateLevel checks one level's values on their own, so that a problem
// names the file and the path where it was written.
func validateLevel(l Level, values map[string]any) error {
	cfg, err := decode(values)
	if err != nil {
		return &FieldError{Source: l.Source, Path: l.Path, Problem: err.Error()}
	}
	return cfg.validate(l.Source, l.Path)
}

func decode(tree map[string]any) (*Config, error) {
	data, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("encode merged executor config: %w", err)
	}
	cfg := &Config{}
	if err := json.Unmarshal(data, cfg); err != nil {
		return nil, fmt.Errorf("decode merged executor config: %w", err)
	}
	return cfg, nil
}

// cleanTrigger turns a trigger name into a Job-name-friendly word, as
// Mage does before substituting it (clean_name, then '_' to '-').
func cleanTrigger(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
