package protocol

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/reasons.md from the vocabulary")

// TestEveryReasonDescribed: each Reason constant has its entry, once.
func TestEveryReasonDescribed(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range Reasons() {
		seen[r.Name]++
	}
	consts := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || !strings.HasPrefix(vs.Names[0].Name, "Reason") {
			return true
		}
		consts++
		value := strings.Trim(vs.Values[0].(*ast.BasicLit).Value, `"`)
		if seen[value] != 1 {
			t.Errorf("%s (%q) is described %d times in reasons, want once", vs.Names[0].Name, value, seen[value])
		}
		return true
	})
	if consts != len(Reasons()) {
		t.Errorf("%d Reason constants, %d described", consts, len(Reasons()))
	}
}

// TestReasonsDoc: docs/reasons.md is the vocabulary's table (go test
// ./pkg/protocol -run TestReasonsDoc -update rewrites it).
func TestReasonsDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Status reasons\n\n")
	b.WriteString("Generated from `pkg/protocol/reasons.go` (`go test ./pkg/protocol -run TestReasonsDoc -update`).\n")
	b.WriteString("A reason is in `status.json`, the runner's `result.json`, the Job's Events (a problem is a Warning) and the run's trace.\n\n")
	b.WriteString("| reason | from | problem | what it means |\n|---|---|---|---|\n")
	for _, r := range Reasons() {
		problem := ""
		if r.Problem {
			problem = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, r.Source, problem, r.Means)
	}
	const path = "../../docs/reasons.md"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Errorf("docs/reasons.md is stale: go test ./pkg/protocol -run TestReasonsDoc -update")
	}
}
