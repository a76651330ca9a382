package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Teardown stops and removes everything recorded in state: kubelets first
// (so nothing restarts), then every container and shim of each node, then
// containerd and the control plane; then it unmounts what the nodes
// mounted, removes their cgroups, network namespaces and the bridge, and
// the work directory.
func Teardown(state *State) {
	for _, p := range state.Procs {
		if strings.HasSuffix(p.Name, "-kubelet") {
			stopOwned(p, state.WorkDir, 10*time.Second)
		}
	}
	for _, n := range state.Nodes {
		killCgroup(n.Cgroup)
		killMatching(n.RootDir)
	}
	for i := len(state.Procs) - 1; i >= 0; i-- {
		stopOwned(state.Procs[i], state.WorkDir, 10*time.Second)
	}
	killMatching(state.WorkDir)
	unmountUnder(state.WorkDir)
	for _, n := range state.Nodes {
		removeCgroup(n.Cgroup)
		_ = exec.Command("ip", "netns", "del", n.Netns).Run()
		_ = exec.Command("ip", "link", "del", n.Veth).Run()
	}
	if len(state.Nodes) > 0 {
		removeOrphanPodNetns()
	}
	if state.Bridge != "" {
		_ = exec.Command("ip", "link", "del", state.Bridge).Run()
	}
	if os.Getenv("MAGEKUBE_KEEP_CLUSTER_DIR") == "" {
		_ = os.RemoveAll(state.WorkDir)
	}
}

// Down tears down the cluster whose work directory is dir.
func Down(dir string) error {
	var state State
	if err := readState(filepath.Join(dir, StateFile), &state); err != nil {
		return err
	}
	Teardown(&state)
	return nil
}

func readState(path string, s *State) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, s)
}

// stopOwned stops p's process group if p's PID still runs a command of
// this cluster (its command line names the work directory).
func stopOwned(p *proc, workDir string, grace time.Duration) {
	if cmdline(p.PID) != "" && strings.Contains(cmdline(p.PID), workDir) {
		stopGroup(p.PID, grace)
	}
}

func cmdline(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(data), "\x00", " ")
}

// killMatching SIGKILLs every process whose command line contains s
// (containerd shims name their socket; crashed components their paths).
func killMatching(s string) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if strings.Contains(cmdline(pid), s) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killCgroup SIGKILLs every process in the node's cgroup tree: the
// containers, which are no children of ours.
func killCgroup(name string) {
	for range 50 {
		pids := cgroupPIDs(filepath.Join("/sys/fs/cgroup/pids", name))
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cgroupPIDs(root string) []int {
	var pids []int
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if pid, err := strconv.Atoi(sc.Text()); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroup removes the node's cgroup directories, deepest first.
func removeCgroup(name string) {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, name), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			for range 20 {
				if err := os.Remove(dirs[i]); err == nil || errors.Is(err, fs.ErrNotExist) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, unescape(fields[4]))
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if syscall.Unmount(p, 0) != nil {
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
		}
	}
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeOrphanPodNetns deletes the pod sandbox network namespaces
// containerd pins under /var/run/netns (cni-…) once their node is gone:
// with the node's bridge deleted, only their loopback is left. The kernel
// frees a deleted node namespace's veths asynchronously, so a sandbox may
// still show its eth0 for a moment: it looks again for up to 3 s.
func removeOrphanPodNetns() {
	for range 15 {
		if sweepPodNetns() == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sweepPodNetns deletes the orphaned sandboxes and counts those left.
func sweepPodNetns() (left int) {
	names, _ := filepath.Glob("/var/run/netns/cni-*")
	for _, path := range names {
		name := filepath.Base(path)
		out, err := exec.Command("ip", "-n", name, "-o", "link", "show").Output()
		if err != nil {
			continue
		}
		if links := strings.Fields(strings.TrimSpace(string(out))); len(links) > 0 && strings.Count(string(out), "\n") <= 1 && strings.Contains(string(out), ": lo:") {
			_ = exec.Command("ip", "netns", "del", name).Run()
			continue
		}
		left++
	}
	return left
}
