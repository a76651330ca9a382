package cluster

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Root is where clusters keep their work directories, so leftovers of a
// crashed run can always be found.
const Root = "/tmp/magekube-clusters"

// DownStale tears down every cluster under Root whose owner process is
// gone (or every cluster, with all), then removes network devices a
// crashed run may have left before it recorded them.
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
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "mk") && strings.Contains(f[0], "-node-") {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
		ifaces, _ := net.Interfaces()
		for _, i := range ifaces {
			if strings.HasPrefix(i.Name, bridgePrefix) {
				_ = exec.Command("ip", "link", "del", i.Name).Run()
			}
		}
		removeOrphanPodNetns()
		dirs, _ := filepath.Glob(filepath.Join(Root, "*"))
		for _, d := range dirs {
			killMatching(d)
			unmountUnder(d)
			_ = os.RemoveAll(d)
		}
	}
}
