package local

import (
	"context"

	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
)

// consoleStep waits until the agent log shows Wait, then resizes, types
// or ends the input.
type consoleStep struct {
	Wait   string    `json:"wait,omitempty"`
	Resize [2]uint16 `json:"resize,omitzero"`
	Type   string    `json:"type,omitempty"`
	Close  bool      `json:"close,omitempty"`
}

// driveConsole runs j.Console against the agent and reports what failed.
func driveConsole(ctx context.Context, d *Driver, j job) string {
	con, err := d.Console(ctx, j.Name)
	if err != nil {
		return "console error: " + err.Error() + "\n"
	}
	defer con.Close()
	var report strings.Builder
	fmt.Fprintf(&report, "tty=%v\n", con.TTY())
	for _, st := range j.Console {
		for st.Wait != "" {
			rc, err := d.Logs(ctx, j.Name)
			if err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				if strings.Contains(string(b), st.Wait) {
					break
				}
			}
			if ctx.Err() != nil {
				fmt.Fprintf(&report, "never saw %q\n", st.Wait)
				return report.String()
			}
			time.Sleep(10 * time.Millisecond)
		}
		if st.Resize[0] > 0 {
			if err := con.Resize(st.Resize[0], st.Resize[1]); err != nil {
				fmt.Fprintf(&report, "resize: %v\n", err)
			}
		}
		if st.Type != "" {
			if _, err := con.Write([]byte(st.Type)); err != nil {
				fmt.Fprintf(&report, "type %q: %v\n", st.Type, err)
			}
		}
		if st.Close {
			if err := con.CloseInput(); err != nil {
				fmt.Fprintf(&report, "close input: %v\n", err)
			}
		}
	}
	return report.String()
}

// TestConsole_Terminal: an agent started on a terminal inside the sandbox
// gets the window size (SIGWINCH), typed lines, Ctrl-C as SIGINT of its
// foreground process group, and Ctrl-D as the end of input; its output is
// in the log with the agent's own line ends.
func TestConsole_Terminal(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		script := `echo ready
read go
stty size
tty
cat
echo cat-done
trap 'echo got-INT; exit 0' INT
echo int-ready
while :; do sleep 1; done`
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", script}, Stdin: sandbox.StdinTTY, Console: []consoleStep{
			{Wait: "ready", Resize: [2]uint16{40, 120}, Type: "go\n"},
			{Wait: "/dev/pts/", Type: "hello\n"},
			{Wait: "hello\nhello\n", Close: true},
			{Wait: "int-ready", Type: "\x03"},
		}})
		if res.StartErr != "" || res.Info.ExitCode != 0 {
			t.Fatalf("start=%q exit=%d\n%s", res.StartErr, res.Info.ExitCode, res.Output)
		}
		expectLines(t, res.Output, "40 120", "hello", "cat-done", "got-INT", "tty=true")
		if !strings.Contains(res.Output, "/dev/pts/") {
			t.Errorf("the agent's stdin is not a terminal of the sandbox's devpts:\n%s", res.Output)
		}
		if strings.Contains(res.Output, "\r\n") {
			t.Errorf("the log has CR LF line ends (ONLCR left on):\n%q", res.Output)
		}
	})
}

// TestConsole_Pipe: a pipe on stdin carries the typed bytes, and closing
// the input is the agent's EOF.
func TestConsole_Pipe(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `echo ready; [ -t 0 ] && echo is-tty; cat; echo cat-done`},
			Stdin: sandbox.StdinPipe, Console: []consoleStep{
				{Wait: "ready", Type: "through the pipe\n"},
				{Wait: "through the pipe", Close: true},
			}})
		if res.StartErr != "" || res.Info.ExitCode != 0 {
			t.Fatalf("start=%q exit=%d\n%s", res.StartErr, res.Info.ExitCode, res.Output)
		}
		expectLines(t, res.Output, "through the pipe", "cat-done", "tty=false")
		if strings.Contains(res.Output, "is-tty") {
			t.Errorf("stdin is a terminal, want a pipe:\n%s", res.Output)
		}
	})
}

// TestConsole_None: an agent started without Stdin has no console.
func TestConsole_None(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `cat; echo cat-done; sleep 5`}, Console: []consoleStep{{Wait: "cat-done"}}})
		if !strings.Contains(res.Output, "console error: ") || !strings.Contains(res.Output, sandbox.ErrNoConsole.Error()) {
			t.Errorf("Console on an agent without stdin: want %v\n%s", sandbox.ErrNoConsole, res.Output)
		}
		expectLines(t, res.Output, "cat-done")
	})
}
