package local

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/creack/pty"

	"github.com/nemoclave/nemoclave/sandbox"
)

// The agent's console: for a sandbox created with Spec.Stdin, the init
// stage hands the supervisor the write end of the agent's stdin pipe, or
// the controlling side of the terminal it started the agent on. Output is
// never read here: init drains it into agent.log, and followers read the
// log, so every viewer (attached run, connect, logs --tail) sees the same
// bytes and none of them can starve another.

// Console returns the agent's keyboard.
func (d *Driver) Console(ctx context.Context, name string) (sandbox.Console, error) {
	run, err := d.runningSandbox(ctx, name)
	if err != nil {
		return nil, err
	}
	run.inputMu.Lock()
	defer run.inputMu.Unlock()
	if run.input == nil {
		if run.inputTTY {
			return nil, fmt.Errorf("%s: the agent's terminal is closed", name)
		}
		return nil, fmt.Errorf("%s: %w", name, sandbox.ErrNoConsole)
	}
	return &console{run: run}, nil
}

type console struct {
	run    *running
	closed bool
}

func (c *console) file() (*os.File, error) {
	if c.closed {
		return nil, os.ErrClosed
	}
	if c.run.input == nil {
		return nil, io.ErrClosedPipe
	}
	return c.run.input, nil
}

func (c *console) Write(b []byte) (int, error) {
	c.run.inputMu.Lock()
	f, err := c.file()
	if err == nil && len(b) > 0 {
		c.run.lastInput = b[len(b)-1]
	}
	c.run.inputMu.Unlock()
	if err != nil {
		return 0, err
	}
	// Outside the lock: an agent that reads nothing blocks only this
	// writer, never the sandbox's exit (which closes f and so ends it).
	return f.Write(b)
}

func (c *console) Resize(rows, cols uint16) error {
	c.run.inputMu.Lock()
	defer c.run.inputMu.Unlock()
	f, err := c.file()
	if err != nil || !c.run.inputTTY || rows == 0 || cols == 0 {
		return err
	}
	// TIOCSWINSZ on the controlling side: the kernel sends SIGWINCH to
	// the terminal's foreground process group.
	return pty.Setsize(f, &pty.Winsize{Rows: rows, Cols: cols})
}

func (c *console) CloseInput() error {
	c.run.inputMu.Lock()
	defer c.run.inputMu.Unlock()
	f, err := c.file()
	if err != nil {
		return err
	}
	if !c.run.inputTTY {
		c.run.input = nil
		return f.Close()
	}
	// A terminal in canonical mode reads its EOF character (^D) at the
	// start of a line as end of input; after a partial line the first one
	// only submits the line.
	eof := []byte{0x04}
	if l := c.run.lastInput; l != 0 && l != '\n' && l != '\r' && l != 0x04 {
		eof = []byte{0x04, 0x04}
	}
	_, err = f.Write(eof)
	c.run.lastInput = 0x04
	return err
}

func (c *console) TTY() bool { return c.run.inputTTY }

func (c *console) Close() error {
	c.run.inputMu.Lock()
	defer c.run.inputMu.Unlock()
	c.closed = true
	return nil
}
