package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sandbox"
)

// Attaching to an agent: its input goes through the driver's Console (a
// terminal or a stdin pipe inside the sandbox), its output is read from
// the agent log like `logs --tail`, so an attached run, any number of
// `connect`s and the log all see the same bytes.

// attachPoll is how often an attached reader looks for new output: often
// enough that typing echoes without a visible lag.
const attachPoll = 20 * time.Millisecond

// defaultRows and defaultCols size a detached agent's terminal until
// someone connects with a real one.
const defaultRows, defaultCols = 24, 80

type eventWriter struct{ ev daemon.RunEvents }

func (w eventWriter) Write(b []byte) (int, error) { w.ev.Output(b); return len(b), nil }

func (rn *run) followLogs(ctx context.Context, w io.Writer) error {
	// The log is opened whatever ctx says: a cancelled follower still
	// delivers everything written so far, then stops at its end.
	return followFileEvery(ctx, func() (io.ReadCloser, error) { return rn.driver.Logs(context.Background(), rn.name) }, w, true, 0, false, attachPoll)
}

// openConsole sizes a started agent's terminal and, for the agent that
// reads an attached run's input, tells the CLI to attach. A driver
// without consoles (Kubernetes) leaves the agent without input.
func (rn *run) openConsole(ctx context.Context, req daemon.RunRequest, ev daemon.RunEvents) {
	if rn.stdin == sandbox.StdinNull {
		return
	}
	con, err := rn.driver.Console(ctx, rn.name)
	if err != nil {
		if !req.Detach {
			ev.Output([]byte(fmt.Sprintf("nemoclave: the agent in %s gets no input: %v\n", rn.name, err)))
		}
		return
	}
	defer con.Close()
	rows, cols := req.Rows, req.Cols
	if rows == 0 || cols == 0 {
		rows, cols = defaultRows, defaultCols
	}
	_ = con.Resize(rows, cols)
	if !req.Detach {
		ev.Console(rn.name, con.TTY())
	}
}

// Attach serves `nemoclave <sandbox> connect` and the input side of an
// attached run.
func (r *Runtime) Attach(ctx context.Context, req daemon.AttachRequest, in <-chan daemon.AttachInput, ev daemon.AttachEvents) error {
	d, err := r.driverOf(ctx, req.Sandbox)
	if err != nil {
		return err
	}
	con, err := d.Console(ctx, req.Sandbox)
	if errors.Is(err, sandbox.ErrNoConsole) {
		return fmt.Errorf("%w; it was started by an attached run without a terminal or pipe on its stdin. Open a shell beside it with `nemoclave sandbox connect %s --shell`, or run the blueprint again with -d to get an agent you can connect to", err, req.Sandbox)
	}
	if err != nil {
		return err
	}
	defer con.Close()
	if req.Rows > 0 && req.Cols > 0 {
		_ = con.Resize(req.Rows, req.Cols)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type exit struct {
		info sandbox.Info
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		info, err := d.Wait(ctx, req.Sandbox)
		exited <- exit{info, err}
	}()
	var output sync.WaitGroup
	octx, stopOutput := context.WithCancel(ctx)
	defer stopOutput()
	ev.Ready(con.TTY())
	if req.Output {
		output.Add(1)
		go func() {
			defer output.Done()
			w := attachWriter{ev}
			_ = followFileEvery(octx, func() (io.ReadCloser, error) { return d.Logs(context.Background(), req.Sandbox) }, w, true, req.Tail, true, attachPoll)
		}()
	}
	// Writes go through one goroutine in order (an agent that reads
	// slowly blocks only it); nil closes the input after what came before.
	writes := make(chan []byte, 64)
	defer close(writes)
	queue := func(b []byte) {
		select {
		case writes <- b:
		case <-ctx.Done():
		}
	}
	go func() {
		for b := range writes {
			if b == nil {
				_ = con.CloseInput()
				continue
			}
			_, _ = con.Write(b)
		}
	}()
	for {
		select {
		case m, ok := <-in:
			if !ok {
				return nil // the client went away; the agent runs on
			}
			switch {
			case m.Detach:
				r.markDetached(req.Sandbox)
				ev.Detached()
				return nil
			case m.Resize != nil:
				_ = con.Resize(m.Resize[0], m.Resize[1])
			case m.CloseStdin:
				queue(nil)
			case len(m.Stdin) > 0:
				queue(m.Stdin)
			}
		case e := <-exited:
			if e.err != nil {
				return e.err
			}
			// The reader delivers the log to its end before it stops.
			stopOutput()
			output.Wait()
			ev.Exit(e.info.ExitCode, e.info.Reason)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

type attachWriter struct{ ev daemon.AttachEvents }

func (w attachWriter) Write(b []byte) (int, error) { w.ev.Output(b); return len(b), nil }

// markDetached turns an attached run of the sandbox into a detached one:
// when its CLI goes, the agent keeps running.
func (r *Runtime) markDetached(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rn := r.runs[name]; rn != nil {
		rn.detached.Store(true)
	}
}
