// Command runc-nocap is runc without the capabilities this host cannot
// grant. Some sandboxes run with a capability bounding set that lacks
// one capability (CAP_SYS_RESOURCE on the project's build machines), and
// runc then refuses every privileged container ("unable to apply caps").
// Registered as Docker's default runtime, and as containerd's runc inside
// the kind node image, it removes those capabilities from the OCI spec a
// container is created or exec'd with (the bundle's config.json on create
// and run, the --process file on exec), then execs the real runc with the
// same arguments. On a host with every capability it changes nothing.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames are the kernel's capability numbers, CAP_CHOWN = 0 onward.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "runc-nocap:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	real := os.Getenv("RUNC_NOCAP_RUNC")
	if real == "" {
		real = "/usr/sbin/runc"
	}
	missing, err := missingCaps("/proc/self/status")
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		if file := specFile(args); file != "" {
			if err := dropCaps(file, missing); err != nil {
				return err
			}
		}
	}
	return syscall.Exec(real, append([]string{real}, args...), os.Environ())
}

// missingCaps names the known capabilities absent from the bounding set.
func missingCaps(status string) (map[string]bool, error) {
	f, err := os.Open(status)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		hex, ok := strings.CutPrefix(s.Text(), "CapBnd:")
		if !ok {
			continue
		}
		bnd, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: CapBnd %q: %w", status, hex, err)
		}
		missing := map[string]bool{}
		for i, name := range capNames {
			if bnd&(1<<i) == 0 {
				missing[name] = true
			}
		}
		return missing, nil
	}
	return nil, fmt.Errorf("%s: no CapBnd line", status)
}

// specFile is the file runc reads the process from: the bundle's
// config.json for create and run, the --process file for exec, or "".
// runc's global flags come before the command; they all take their value
// as --flag=value or as the next argument, except the boolean ones.
func specFile(args []string) string {
	booleans := map[string]bool{"--debug": true, "--systemd-cgroup": true, "--help": true, "-h": true, "--version": true, "-v": true}
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if !booleans[args[i]] && !strings.Contains(args[i], "=") {
			i++
		}
		i++
	}
	if i >= len(args) {
		return ""
	}
	cmd, rest := args[i], args[i+1:]
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		return filepath.Join(bundle, "config.json")
	case "exec":
		return flagValue(rest, "--process", "-p")
	}
	return ""
}

func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, f := range []string{long, short} {
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// dropCaps removes the missing capabilities from every capability set of
// the process in file: a whole OCI config (its "process") or an exec's
// process document. Other fields are kept as they are.
func dropCaps(file string, missing map[string]bool) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	process := doc
	if raw, ok := doc["process"]; ok {
		if err := json.Unmarshal(raw, &process); err != nil {
			return fmt.Errorf("%s: process: %w", file, err)
		}
	}
	raw, ok := process["capabilities"]
	if !ok {
		return nil
	}
	var sets map[string][]string
	if err := json.Unmarshal(raw, &sets); err != nil {
		return fmt.Errorf("%s: capabilities: %w", file, err)
	}
	changed := false
	for name, caps := range sets {
		kept := caps[:0]
		for _, c := range caps {
			if missing[c] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		sets[name] = kept
	}
	if !changed {
		return nil
	}
	if process["capabilities"], err = json.Marshal(sets); err != nil {
		return err
	}
	if _, nested := doc["process"]; nested {
		if doc["process"], err = json.Marshal(process); err != nil {
			return err
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, st.Mode().Perm())
}
