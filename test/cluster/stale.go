package cluster

import (
	"os"
	"path/filepath"
	"syscall"
)

// Root is where clusters keep their work directories, so leftovers of a
// crashed run can always be found.
const Root = "/tmp/magekube-clusters"

// DownStale tears down every cluster under Root whose owner process is
// gone (or every cluster, with all).
func DownStale(all bool) {
	states, _ := filepath.Glob(filepath.Join(Root, "*", StateFile))
	for _, f := range states {
		dir := filepath.Dir(f)
		var s State
		if readState(f, &s) == nil && !all && s.Owner != os.Getpid() && syscall.Kill(s.Owner, 0) == nil {
			continue // its owner still runs: not stale
		}
		_ = Down(dir)
	}
	if all {
		dirs, _ := filepath.Glob(filepath.Join(Root, "*"))
		for _, d := range dirs {
			killMatching(d)
			_ = os.RemoveAll(d)
		}
	}
}
