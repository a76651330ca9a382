package protocol

import (
	"path/filepath"
	"strings"
)

// Names of the files and directories under the root (DESIGN.md).
const (
	RequestsDir = "requests"
	RunsDir     = "runs"
	RequestFile = "request.json"
	StatusFile  = "status.json"
	ResultFile  = "result.json"
	LogFile     = "log"
	SpansDir    = "spans"
	CancelFile  = "cancel"
	// AgentDir holds the agent's own files: HeartbeatFile, rewritten every
	// HeartbeatInterval while the agent's loop runs.
	AgentDir      = "agent"
	HeartbeatFile = "heartbeat"
	// RequestSuffix is the only suffix the agent picks up in requests/.
	RequestSuffix = ".json"
)

// Heartbeat is the file whose age tells clients whether an agent serves
// the directory (the Mage trigger names it when a request goes unclaimed).
func (l Layout) Heartbeat() string { return filepath.Join(l.Root, AgentDir, HeartbeatFile) }

// Layout resolves paths under one root directory.
type Layout struct{ Root string }

// Requests is the directory the server drops requests into.
func (l Layout) Requests() string { return filepath.Join(l.Root, RequestsDir) }

// Runs is the directory holding one directory per claimed run.
func (l Layout) Runs() string { return filepath.Join(l.Root, RunsDir) }

// RequestPath is where the server writes the request with this id.
func (l Layout) RequestPath(id string) string {
	return filepath.Join(l.Requests(), id+RequestSuffix)
}

// RunDir is the directory of one run.
func (l Layout) RunDir(id string) string { return filepath.Join(l.Runs(), id) }

// RunFile is a file in the directory of one run.
func (l Layout) RunFile(id, name string) string { return filepath.Join(l.RunDir(id), name) }

// RequestID returns the id a file name in requests/ stands for, and false
// for names the agent must ignore: temporary and hidden files, other
// suffixes.
func RequestID(name string) (string, bool) {
	if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, RequestSuffix) {
		return "", false
	}
	return strings.TrimSuffix(name, RequestSuffix), true
}

// DefaultRoot is the default root directory on the shared volume.
const DefaultRoot = "/home/src/.magekube"
