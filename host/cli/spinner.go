package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// A spinner shows that a slow step is alive and why it is slow. On a
// terminal it redraws one line with the elapsed seconds; elsewhere (logs,
// CI, pipes) it prints the line once, so output stays readable.
type spinner struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex // guards msg
	msg   string
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
}

// isTerminal says whether w writes to a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startSpinner prints msg (what is happening and why it can take a while)
// on w until Stop.
func startSpinner(w io.Writer, msg string) *spinner {
	s := newSpinner(w, isTerminal(w), msg)
	if !s.tty {
		fmt.Fprintf(w, "… %s\n", msg)
	}
	return s
}

// newSpinner animates msg on w when tty is set (w reaches a terminal,
// perhaps through a wrapper such as crlfWriter); otherwise it prints
// nothing and Stop does nothing.
func newSpinner(w io.Writer, tty bool, msg string) *spinner {
	s := &spinner{w: w, tty: tty, msg: msg, start: time.Now(), stop: make(chan struct{})}
	if !s.tty {
		return s
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			s.mu.Lock()
			msg := s.msg
			s.mu.Unlock()
			line := fmt.Sprintf("%c %s (%ds)", frames[i%len(frames)], msg, int(time.Since(s.start).Seconds()))
			fmt.Fprint(s.w, "\r\x1b[K"+fitLine(line, stderrWidth()))
			select {
			case <-s.stop:
				fmt.Fprint(s.w, "\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the spinner and clears its line; the caller prints the result.
func (s *spinner) Stop() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.done.Wait()
}

// Set changes the message; the next frame shows it.
func (s *spinner) Set(msg string) {
	s.mu.Lock()
	s.msg = msg
	s.mu.Unlock()
}

// stderrWidth is the width of the terminal on stderr, 0 when unknown.
func stderrWidth() int {
	w, _, err := term.GetSize(int(os.Stderr.Fd()))
	if err != nil {
		return 0
	}
	return w
}

// fitLine cuts line to fewer than width columns (one rune a column), so a
// redrawn line never wraps: "\r" returns only to the start of the last
// row.
func fitLine(line string, width int) string {
	r := []rune(line)
	if width <= 1 || len(r) < width {
		return line
	}
	return string(r[:width-2]) + "…"
}
