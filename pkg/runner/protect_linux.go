package runner

import "golang.org/x/sys/unix"

// protectKey makes the runner non-dumpable before it starts the block:
// its /proc files (environ, mem, the initial environment that holds the
// run's key among them) become root's, and no process without
// CAP_SYS_PTRACE, the block running as the same user included, can read
// them or attach to the runner. The block's own environment never holds
// the key (childEnv).
func protectKey() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }
