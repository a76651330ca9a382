//go:build unix

package protocol

import (
	"errors"
	"syscall"
)

// openSafe opens without following a final link or blocking on a FIFO.
const openSafe = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

func isLinkError(err error) bool { return errors.Is(err, syscall.ELOOP) }
