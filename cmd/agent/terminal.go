package main

import (
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/term"
)

// terminalSafe is w, or, when w is a terminal, w with every control
// character but newline, carriage return and tab shown escaped (\x1b…):
// a block's log may hold escape sequences that would otherwise drive the
// reader's terminal.
func terminalSafe(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return escaper{w}
	}
	return w
}

type escaper struct{ w io.Writer }

func (e escaper) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			out = append(out, byte(r))
		case r < 0x20 || r == 0x7f || (r == utf8.RuneError && n == 1):
			out = fmt.Appendf(out, "\\x%02x", p[i])
		case r >= 0x80 && r < 0xa0: // C1 controls (CSI among them)
			out = fmt.Appendf(out, "\\u%04x", r)
		default:
			out = append(out, p[i:i+n]...)
		}
		i += n
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
