// Package server is `agent run`: it connects to the API server, reads the
// server pod, checks the agent's permissions, serves /healthz, /readyz and
// /metrics (and /debug/pprof/ when asked), and runs the dispatch engine
// until it is told to stop.
package server
