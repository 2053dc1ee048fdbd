package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/creack/pty"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// Exec and Attach spawn extra processes through the sandbox's PID 1, from
// the same restricted thread as the agent, so they carry exactly the
// agent's restrictions. Their stdio descriptors travel over the control
// socket; nothing of the supervisor is inherited.

func (d *Driver) runningSandbox(ctx context.Context, name string) (*running, error) {
	d.mu.Lock()
	run := d.running[name]
	d.mu.Unlock()
	if run == nil {
		if _, err := d.Status(ctx, name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s (or it was started by another supervisor process)", sandbox.ErrNotRunning, name)
	}
	return run, nil
}

func (r *running) execEnv(extra map[string]string) ([]string, error) {
	env := append([]string(nil), r.env...)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if err := confine.CheckEnvName(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env, nil
}

// Exec runs req.Command inside the sandbox.
func (d *Driver) Exec(ctx context.Context, name string, req sandbox.ExecRequest) (sandbox.Process, error) {
	run, err := d.runningSandbox(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(req.Command) == 0 {
		return nil, fmt.Errorf("exec in %s: no command", name)
	}
	env, err := run.execEnv(req.Env)
	if err != nil {
		return nil, err
	}
	p := &process{run: run}
	var stdio [3]*os.File
	var toClose []*os.File
	defer func() {
		for _, f := range toClose {
			f.Close()
		}
	}()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	toClose = append(toClose, null)
	if req.Stdin == nil {
		stdio[0] = null
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		stdio[0] = pr
		toClose = append(toClose, pr)
		go func() { _, _ = io.Copy(pw, req.Stdin); pw.Close() }()
	}
	for i, w := range []io.Writer{req.Stdout, req.Stderr} {
		if w == nil {
			stdio[i+1] = null
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		stdio[i+1] = pw
		toClose = append(toClose, pw)
		p.copies.Add(1)
		go func() { defer p.copies.Done(); _, _ = io.Copy(w, pr); pr.Close() }()
	}
	id, ch, _, err := run.startProcess(req.Command, env, false, stdio[:])
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", name, err)
	}
	p.id, p.ch = id, ch
	return p, nil
}

type process struct {
	run    *running
	id     int
	ch     chan envelope
	copies sync.WaitGroup

	once sync.Once
	code int
	err  error
}

// Wait returns the process's exit code once it and its output are done.
func (p *process) Wait(ctx context.Context) (int, error) {
	select {
	case e := <-p.ch:
		p.once.Do(func() {
			closeAll(e.files)
			p.code = e.msg.Code
			if e.msg.Op == opError {
				p.code, p.err = -1, fmt.Errorf("%w: %s", errSandboxGone, e.msg.Error)
			}
			p.copies.Wait()
		})
		// Let later callers see the same answer.
		go func() { p.ch <- envelope{msg: e.msg} }()
		return p.code, p.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Attach runs req.Command on a new pseudo terminal inside the sandbox.
func (d *Driver) Attach(ctx context.Context, name string, req sandbox.AttachRequest) (sandbox.Terminal, error) {
	run, err := d.runningSandbox(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(req.Command) == 0 {
		req.Command = []string{"/bin/sh"}
	}
	env, err := run.execEnv(req.Env)
	if err != nil {
		return nil, err
	}
	// The terminal is allocated by init from the sandbox's own devpts, so
	// the process sees a named /dev/pts/N and the host's ptys stay out.
	id, ch, master, err := run.startProcess(req.Command, env, true, nil)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", name, err)
	}
	if master == nil {
		return nil, fmt.Errorf("attach to %s: the command exited before its terminal was handed over", name)
	}
	if req.Rows > 0 && req.Cols > 0 {
		_ = pty.Setsize(master, &pty.Winsize{Rows: req.Rows, Cols: req.Cols})
	}
	return &terminal{File: master, process: &process{run: run, id: id, ch: ch}}, nil
}

type terminal struct {
	*os.File
	*process
}

func (t *terminal) Resize(rows, cols uint16) error {
	return pty.Setsize(t.File, &pty.Winsize{Rows: rows, Cols: cols})
}
