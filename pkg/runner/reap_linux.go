package runner

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes orphaned descendants children of this process (as
// they are of PID 1), so the reaper below collects them even when the
// runner is not PID 1.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reap waits for children of this process until the main command exits,
// and sends its status on done. Orphans that exit meanwhile are collected
// too, so none stays a zombie.
func reap(main int, done chan<- syscall.WaitStatus) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid == main {
			if err != nil { // no children: main was reaped elsewhere
				ws = syscall.WaitStatus(255 << 8)
			}
			done <- ws
			return
		}
	}
}

// sweep collects every child that has already exited, without blocking.
func sweep() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
