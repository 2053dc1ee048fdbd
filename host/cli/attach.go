package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// Attaching the operator's terminal to an agent (`run` attached and
// `<sandbox> connect`): the terminal goes raw so every key, Ctrl-C
// included, reaches the agent's own terminal inside the sandbox; Ctrl-P
// Ctrl-Q detaches and leaves the agent running; window size changes
// follow SIGWINCH. A pipe on stdin is copied and its end closes the
// agent's input.

// Detach key sequence: Ctrl-P then Ctrl-Q, as docker and podman.
const (
	detachKey1   = 0x10
	detachKey2   = 0x11
	detachKeyDoc = "Ctrl-P Ctrl-Q"
)

// stdinMode says what this process can forward: "tty" when stdin is a
// terminal, "pipe" for a pipe, file or socket, "" otherwise (/dev/null or
// nothing: the agent reads nothing).
func stdinMode() string {
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		return "tty"
	}
	st, err := os.Stdin.Stat()
	if err != nil {
		return ""
	}
	switch m := st.Mode(); {
	case m&os.ModeNamedPipe != 0, m&os.ModeSocket != 0, m.IsRegular():
		return "pipe"
	}
	return ""
}

// rawTerminal puts stdin in raw mode; restore is safe to call more than
// once and is also run on SIGTERM and SIGHUP, so no exit path leaves the
// operator's terminal raw.
func rawTerminal() (func(), error) {
	fd := int(os.Stdin.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("cannot put the terminal in raw mode: %w", err)
	}
	var once sync.Once
	restore := func() { once.Do(func() { _ = term.Restore(fd, old) }) }
	// SIGINT and SIGTERM cancel the command's context, and its deferred
	// restore runs; a hang-up ends the process here.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	stop := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			restore()
			os.Exit(129)
		case <-stop:
		}
	}()
	var stopOnce sync.Once
	return func() {
		stopOnce.Do(func() { signal.Stop(sigs); close(stop) })
		restore()
	}, nil
}

// terminalSize is the operator's window, or zeros.
func terminalSize() (rows, cols uint16) {
	if c, r, err := term.GetSize(int(os.Stdin.Fd())); err == nil {
		return uint16(r), uint16(c)
	}
	return 0, 0
}

// followWindow sends the window size on every SIGWINCH until ctx ends.
func followWindow(ctx context.Context, resize func(rows, cols uint16) error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if r, c := terminalSize(); r > 0 && c > 0 {
					_ = resize(r, c)
				}
			}
		}
	}()
}

// readInput starts reading in at once, so typed or piped input is kept
// (and a terminal's line discipline sees it read) while the sandbox is
// still starting. The channel closes at the end of in. Before started
// reports true, a Ctrl-C on a terminal calls interrupt instead of being
// forwarded: there is no agent yet to send it to.
func readInput(in io.Reader, tty bool, started func() bool, interrupt func()) <-chan []byte {
	ch := make(chan []byte, 256)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 4096)
			n, err := in.Read(buf)
			if n > 0 {
				b := buf[:n]
				if tty && !started() && bytes.IndexByte(b, 0x03) >= 0 {
					interrupt()
					return
				}
				ch <- b
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// pumpInput copies input to the session until it ends (then closes the
// agent's input) or, on a terminal, the detach keys are typed (then calls
// detach and stops).
func pumpInput(input <-chan []byte, s *daemon.AttachSession, tty bool, detach func()) {
	held := false // a Ctrl-P waits for the next key
	for b := range input {
		if tty {
			var out []byte
			if held {
				held = false
				if b[0] == detachKey2 {
					detach()
					return
				}
				out = append(out, detachKey1)
			}
			for i := 0; i < len(b); i++ {
				if b[i] != detachKey1 {
					out = append(out, b[i])
					continue
				}
				if i+1 == len(b) {
					held = true
					break
				}
				if b[i+1] == detachKey2 {
					if len(out) > 0 {
						_, _ = s.Write(out)
					}
					detach()
					return
				}
				out = append(out, b[i])
			}
			b = out
		}
		if len(b) > 0 {
			if _, err := s.Write(b); err != nil {
				return
			}
		}
	}
	_ = s.CloseStdin()
}

// terminalWriter shows an agent's output on a raw terminal: escaped like
// `nemoclave logs` (F20), except carriage return and backspace, which a
// line editor needs and which cannot drive the terminal; a bare LF
// becomes CR LF, since the raw terminal no longer adds the CR.
type terminalWriter struct {
	esc *escapeWriter
	w   io.Writer
}

func newTerminalWriter(w io.Writer) *terminalWriter {
	t := &terminalWriter{w: w}
	t.esc = newEscapeWriter(crlfWriter{w})
	return t
}

func (t *terminalWriter) Write(p []byte) (int, error) {
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexAny(rest, "\r\b")
		if i < 0 {
			if _, err := t.esc.Write(rest); err != nil {
				return 0, err
			}
			break
		}
		if i > 0 {
			if _, err := t.esc.Write(rest[:i]); err != nil {
				return 0, err
			}
		}
		// Never inside a rune: both are ASCII.
		if _, err := t.w.Write(rest[i : i+1]); err != nil {
			return 0, err
		}
		rest = rest[i+1:]
	}
	return len(p), nil
}

func (t *terminalWriter) Flush() error { return t.esc.Flush() }

type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
