// Package dryrun prints the Job the agent would create for a request:
// `agent render`, the dry run users and tests compare against.
package dryrun
