package execconfig

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Vars is what templates may read.
type Vars struct {
	// Env resolves env_var('NAME'): the Mage process's env as the request
	// carries it, else the Mage container's literal env.
	Env func(name string) (string, bool)
	// Globals are the run's global variables: {{ variables('x') }} and {{ x }}.
	Globals map[string]any
	// TriggerName replaces {trigger_name} in job_name_prefix.
	TriggerName string
}

var (
	tmplExpr = regexp.MustCompile(`\{\{(.*?)\}\}`)
	callExpr = regexp.MustCompile(`^(\w+)\(\s*(?:'([^']*)'|"([^"]*)")\s*(?:,\s*(?:'([^']*)'|"([^"]*)")\s*)?\)$`)
	nameExpr = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// render replaces each {{ expression }} in s. The expressions Mage users
// write in executor configs are supported: env_var('NAME'),
// env_var('NAME', 'default'), variables('name') and a bare global variable
// name. Unlike Mage (which prints "None"), an unset variable is an error.
func render(s string, vars Vars) (string, error) {
	if strings.Contains(s, "{%") {
		return s, fmt.Errorf("template statements ({%% ... %%}) are not supported in executor config, only {{ ... }} expressions")
	}
	var firstErr error
	out := tmplExpr.ReplaceAllStringFunc(s, func(m string) string {
		v, err := evaluate(strings.TrimSpace(m[2:len(m)-2]), vars)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	if firstErr == nil && strings.Contains(out, "{{") {
		firstErr = fmt.Errorf("unclosed template expression in %q", s)
	}
	return out, firstErr
}

func evaluate(expr string, vars Vars) (string, error) {
	if nameExpr.MatchString(expr) {
		return global(expr, vars)
	}
	m := callExpr.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("template expression {{ %s }} is not supported (use env_var('NAME'), variables('name') or a variable name)", expr)
	}
	fn, arg := m[1], m[2]+m[3]
	def, hasDef := m[4]+m[5], m[4] != "" || m[5] != "" || strings.Contains(expr, ",")
	switch fn {
	case "env_var":
		if vars.Env != nil {
			if v, ok := vars.Env(arg); ok {
				return v, nil
			}
		}
		if hasDef {
			return def, nil
		}
		return "", fmt.Errorf("env_var('%s'): %s is not set in the Mage container (neither sent with the request by the Mage trigger nor a literal value of the container's env); give a default: env_var('%s', 'value')", arg, arg, arg)
	case "variables":
		return global(arg, vars)
	}
	return "", fmt.Errorf("template function %s() is not supported (use env_var or variables)", fn)
}

func global(name string, vars Vars) (string, error) {
	v, ok := vars.Globals[name]
	if !ok || v == nil {
		return "", fmt.Errorf("variable %q is not set in the run's global variables", name)
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("variable %q: %w", name, err)
	}
	return string(b), nil
}

// renderTree renders every string value (not key) of a decoded tree in
// place, reporting failures with their field paths.
func renderTree(c *checker, path string, v any, vars Vars) any {
	switch x := v.(type) {
	case string:
		out, err := render(x, vars)
		if err != nil {
			c.fail(path, "%v", err)
		}
		return out
	case map[string]any:
		for _, k := range sortedKeys(x) {
			x[k] = renderTree(c, child(path, k), x[k], vars)
		}
	case []any:
		for i := range x {
			x[i] = renderTree(c, index(path, i), x[i], vars)
		}
	}
	return v
}
