// Package dispatch is the agent's engine: it turns run requests into Jobs,
// tracks them to the end and writes every outcome back as files. One
// goroutine owns all run state; Judge (verdict.go) decides every status.
package dispatch
