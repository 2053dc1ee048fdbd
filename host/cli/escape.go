package cli

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// escapeWriter shows terminal control sequences in a sandbox's output as
// inert text (F20): an agent that prints OSC 52 (set the clipboard), OSC 0
// (set the title), a screen clear or a bidi override must not drive the
// operator's terminal through `nemoclave logs` or an attached run. ESC
// becomes `\x1b`, C1 controls `\x9b`, bidi and line-separator characters
// `\u202e`; newline and tab pass. Invalid UTF-8 bytes are escaped too. A
// rune split across writes is held until it is complete; Flush writes
// what is left at the end.
type escapeWriter struct {
	w       io.Writer
	pending []byte
}

func newEscapeWriter(w io.Writer) *escapeWriter { return &escapeWriter{w: w} }

func (e *escapeWriter) Write(p []byte) (int, error) {
	b := append(e.pending, p...)
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	e.pending = append([]byte(nil), b[cut:]...)
	if _, err := e.w.Write(escapeControls(b[:cut])); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a trailing incomplete rune, escaped.
func (e *escapeWriter) Flush() error {
	if len(e.pending) == 0 {
		return nil
	}
	_, err := e.w.Write(escapeControls(e.pending))
	e.pending = nil
	return err
}

func escapeControls(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == '\n' || r == '\t':
			out = append(out, byte(r))
		case r == utf8.RuneError && size <= 1:
			out = fmt.Appendf(out, `\x%02x`, b[0])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			out = fmt.Appendf(out, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}
