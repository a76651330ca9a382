package jobspec

import (
	"encoding/json"
	"fmt"

	"github.com/magekube/magekube/pkg/execconfig"
)

// overSecurity merges the config's security context over the one the Job
// inherits, field by field (a nested object such as capabilities or
// seccompProfile merges by key; a list such as capabilities.drop is the
// config's when it sets one): a config that sets runAsUser keeps the
// inherited seccomp profile, dropped capabilities and read-only root. The
// policy then checks that the result is at least as strict as the Mage
// container's. Nil over keeps base; nil base takes over.
func overSecurity[T any](base, over *T) (*T, error) {
	if over == nil {
		return base, nil
	}
	if base == nil {
		return over, nil
	}
	b, err := toMap(base)
	if err != nil {
		return nil, err
	}
	o, err := toMap(over)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(execconfig.Merge(b, o))
	if err != nil {
		return nil, fmt.Errorf("merge security context: %w", err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("merge security context: %w", err)
	}
	return out, nil
}

func toMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("merge security context: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("merge security context: %w", err)
	}
	return m, nil
}
