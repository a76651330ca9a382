// Package runner is the engine of the runner binary, the Job container's
// PID 1: it runs the block command in its own process group, forwards
// signals, reaps orphans, tees output to the run's log and writes the
// result and a span file atomically.
package runner
