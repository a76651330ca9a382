// Package dispatch is the agent's engine: it turns run requests into Jobs,
// tracks them to the end and writes every outcome back as files.
package dispatch
