package runner

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// sharedLog is the run's log file, written by both output streams. Each
// chunk is written whole under a lock, so lines of one stream never split
// lines of the other. After a write error it stops trying and warns once.
type sharedLog struct {
	mu      sync.Mutex
	f       *os.File
	failed  bool
	warn    io.Writer
	limit   int64 // bytes the file may take; 0: no limit
	written int64
}

func (l *sharedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.failed {
		return len(p), nil
	}
	chunk := p
	full := l.limit > 0 && l.written+int64(len(p)) > l.limit
	if full {
		chunk = p[:max(0, l.limit-l.written)]
	}
	n, err := l.f.Write(chunk)
	l.written += int64(n)
	switch {
	case err != nil:
		l.failed = true
		fmt.Fprintf(l.warn, "runner: warning: writing the run log stopped: %v (output still goes to the container log)\n", err)
	case full:
		l.failed = true
		fmt.Fprintf(l.f, "\n--- magekube: the run log stops at its limit of %d bytes; the rest is in the container log ---\n", l.limit)
	}
	return len(p), nil
}

func (l *sharedLog) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// copyBufferSize bounds the memory one stream uses, whatever the output.
const copyBufferSize = 32 << 10

// tee copies r to both dst and log until EOF or a read error. A failing
// dst (a closed stdout) does not stop the log, and the reverse.
func tee(r io.Reader, dst io.Writer, log io.Writer) {
	buf := make([]byte, copyBufferSize)
	dstOK := true
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if dstOK {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					dstOK = false
				}
			}
			_, _ = log.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}
