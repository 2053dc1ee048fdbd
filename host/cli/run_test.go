package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
)

// lockedBuffer is a bytes.Buffer a spinner's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls until buf shows want (a spinner redraws on its own clock).
func waitFor(t *testing.T, buf *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never showed %q:\n%q", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On a terminal a running step spins with what it waits for (a pod's
// phase and last event), and its line is replaced by the step's result.
func TestRunPrinter_SpinnerOnTerminal(t *testing.T) {
	var progress, out lockedBuffer
	p := &runPrinter{out: &out, progress: &progress, tty: true}
	p.Step(daemon.Step{Name: "wait for sandbox qs to run", Phase: "start"})
	waitFor(t, &progress, "wait for sandbox qs to run (0s)")
	p.Step(daemon.Step{Name: "wait for sandbox qs to run", Phase: "progress", Detail: "pod Pending; last event: Pulling: Pulling image \"x\""})
	waitFor(t, &progress, "wait for sandbox qs to run — pod Pending; last event: Pulling: Pulling image \"x\"")
	p.Step(daemon.Step{Name: "wait for sandbox qs to run", Phase: "done", DurationMS: 1500, Detail: "running"})
	got := progress.String()
	if !strings.HasSuffix(got, "\r\x1b[K✓ wait for sandbox qs to run (1500 ms) — running\n") {
		t.Fatalf("the spinner's line was not cleared before the result:\n%q", got)
	}
	if p.spin != nil {
		t.Fatal("the spinner still runs after the step ended")
	}
	// The agent's output stops a spinner before it is written.
	p.Step(daemon.Step{Name: "start agent a", Phase: "start"})
	waitFor(t, &progress, "start agent a (0s)")
	p.Output([]byte("hello\n"))
	if p.spin != nil || out.String() != "hello\n" {
		t.Fatalf("output with a spinner running: spin=%v out=%q", p.spin, out.String())
	}
	n := len(progress.String())
	time.Sleep(250 * time.Millisecond) // two frames' time: nothing may be drawn
	if len(progress.String()) != n {
		t.Fatalf("the spinner drew after the agent's output: %q", progress.String()[n:])
	}
}

// Elsewhere (a pipe, a log file) each step is one line, written when it
// ends; progress reports are not repeated there.
func TestRunPrinter_PlainWithoutTerminal(t *testing.T) {
	var progress, out lockedBuffer
	p := &runPrinter{out: &out, progress: &progress}
	p.Step(daemon.Step{Name: "launch plugins", Phase: "start"})
	p.Step(daemon.Step{Name: "launch plugins", Phase: "progress", Detail: "starting plugin.llm.main"})
	p.Step(daemon.Step{Name: "launch plugins", Phase: "done", DurationMS: 12, Detail: "1 running"})
	p.Step(daemon.Step{Name: "start agent a", Phase: "start"})
	p.Step(daemon.Step{Name: "start agent a", Phase: "failed", DurationMS: 3, Detail: "command \"x\" not found\non the sandbox PATH"})
	want := "✓ launch plugins (12 ms) — 1 running\n✗ start agent a failed after 3 ms:\n    command \"x\" not found\n    on the sandbox PATH\n"
	if got := progress.String(); got != want {
		t.Fatalf("plain progress:\n%q\nwant\n%q", got, want)
	}
	if !p.stepFailed {
		t.Fatal("a failed step did not record that its diagnostic was shown")
	}
}
