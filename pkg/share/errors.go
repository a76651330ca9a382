package share

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrNotRegular is returned for a symbolic link, FIFO, device or
// directory where a regular file is expected; ErrNotDir for anything but
// a real directory where a directory is expected (a link to one included).
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrNotDir     = errors.New("not a directory (a symbolic link is never followed)")
)

// TooLargeError is returned for a file over its cap.
type TooLargeError struct {
	Path      string
	Size, Max int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes; the limit is %d", e.Path, e.Size, e.Max)
}

// FileKind names what a file that is not a regular one is, for messages.
func FileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return m.Type().String()
}
