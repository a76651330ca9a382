package execconfig

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FieldError is one problem with one field of the configuration.
type FieldError struct {
	// Source is the file (relative to the project) or "request".
	Source string
	// Path is the field's path from the top of that source, e.g.
	// k8s_executor_config.resource_limits.memory.
	Path    string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.Source, e.Path, e.Problem)
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// child extends a field path by a map key or struct field.
func child(path, key string) string {
	if !identifier.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// index extends a field path by a list index.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// suggest returns the known name closest to key, or "" when none is close.
func suggest(key string, known []string) string {
	best, bestDist := "", -1
	k := fold(key)
	for _, name := range known {
		d := distance(k, fold(name))
		if bestDist < 0 || d < bestDist {
			best, bestDist = name, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(k)/4) {
		return ""
	}
	return best
}

// fold is the spelling-insensitive form of a key: lower case, no '_'.
func fold(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
