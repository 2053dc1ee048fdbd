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
	msg   string
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
}

// startSpinner prints msg (what is happening and why it can take a while)
// on w until Stop.
func startSpinner(w io.Writer, msg string) *spinner {
	s := &spinner{w: w, msg: msg, start: time.Now(), stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		s.tty = true
	}
	if !s.tty {
		fmt.Fprintf(w, "… %s\n", msg)
		return s
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.w, "\r\x1b[K%c %s (%ds)", frames[i%len(frames)], s.msg, int(time.Since(s.start).Seconds()))
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
