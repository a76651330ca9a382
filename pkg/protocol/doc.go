// Package protocol is the file contract (v1) between the Mage server, the
// agent and the runner: the request, status and result types, the directory
// layout, and the atomic write and claim helpers all three rely on.
package protocol
