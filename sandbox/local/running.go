package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox"
)

// running is the supervisor's handle on a started sandbox: the init
// process, its control socket and the exec requests waiting for replies.
type running struct {
	cmd   *exec.Cmd
	ctl   int
	env   []string
	timer *time.Timer
	done  chan struct{}
	// cleaned closes after done, once the sandbox's cgroups are removed:
	// the removal happens after the exit is reported (off the path of
	// Wait), and Delete waits for it.
	cleaned chan struct{}

	mu      sync.Mutex
	rec     *record
	reason  string
	nextID  int
	waiters map[int]chan envelope

	// input is the agent's stdin pipe (write end) or the controlling
	// side of its terminal; nil when the agent reads /dev/null. Guarded
	// by inputMu; closed when the sandbox ends (or a pipe's input ends).
	inputMu  sync.Mutex
	input    *os.File
	inputTTY bool
	// lastInput is the last byte typed, so CloseInput knows whether the
	// terminal's line is empty (one EOF character ends the input) or not
	// (the first only submits the line).
	lastInput byte
}

func (r *running) info() sandbox.Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.Info
}

func (r *running) setReason(reason string) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason = reason
	}
	r.mu.Unlock()
}

// kill takes the whole sandbox down: SIGKILL to init ends its pid
// namespace, and the cgroup sweep catches anything else.
func (r *running) kill(reason string) {
	r.setReason(reason)
	r.mu.Lock()
	cg := r.rec.Cgroup
	r.mu.Unlock()
	select {
	case <-r.done:
		return
	default:
	}
	// Through os.Process (a pidfd underneath), never kill(pid): once init
	// has been reaped its pid may already belong to someone else.
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	cg.Kill()
}

// supervise reads init's messages until the socket closes, then records
// the outcome. It is the only writer of the record while running.
func (r *running) supervise(d *Driver) {
	var agentExit *message
	for {
		m, files, err := recv(r.ctl)
		if err != nil {
			break
		}
		switch {
		case m.Op == opExited && m.ID == 0:
			closeAll(files)
			mm := m
			agentExit = &mm
		case m.ID != 0:
			r.mu.Lock()
			ch := r.waiters[m.ID]
			if m.Op == opExited || m.Op == opError {
				delete(r.waiters, m.ID)
			}
			r.mu.Unlock()
			if ch != nil {
				ch <- envelope{m, files}
			} else {
				closeAll(files)
			}
		default:
			closeAll(files)
		}
	}
	_ = r.cmd.Wait()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Lock()
	rec := r.rec
	rec.Cgroup.Kill()
	now := time.Now().UTC()
	rec.Info.State, rec.Info.ExitedAt = sandbox.StateExited, now
	switch {
	case agentExit != nil:
		rec.Info.ExitCode, rec.Info.Signal = agentExit.Code, agentExit.Signal
	default:
		if e, ok := d.readExit(rec.Spec.Name); ok {
			rec.Info.ExitCode, rec.Info.Signal = e.Code, e.Signal
			break
		}
		// The agent's status was never reported: say how init ended.
		rec.Info.ExitCode = -1
		if ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Info.Signal = unix.SignalName(ws.Signal())
		} else if r.reason == "" && r.cmd.ProcessState != nil {
			r.reason = fmt.Sprintf("the sandbox init stage exited with status %d before the agent did (see the agent log)", r.cmd.ProcessState.ExitCode())
		}
	}
	rec.Info.Reason = r.reason
	// Fail every exec still waiting: the sandbox is gone.
	for id, ch := range r.waiters {
		ch <- envelope{msg: message{Op: opError, ID: id, Error: "sandbox exited"}}
		delete(r.waiters, id)
	}
	_ = d.save(rec)
	r.mu.Unlock()
	r.inputMu.Lock()
	if r.input != nil {
		r.input.Close()
		r.input = nil
	}
	r.inputMu.Unlock()
	unix.Close(r.ctl)
	// Every process of the sandbox is gone (init was reaped, which ends
	// its pid namespace, and the sweep above found the cgroups empty):
	// the exit is reported now, and the empty cgroup directories are
	// removed after it. Delete waits for cleaned, so a deleted sandbox
	// never leaves a cgroup behind (TestCgroupRemovedAfterExit).
	close(r.done)
	if rec.Cgroup != nil {
		_ = rec.Cgroup.Remove()
	}
	close(r.cleaned)
}

// errSandboxGone is returned by Wait on a process whose sandbox died first.
var errSandboxGone = errors.New("the sandbox exited before the process reported its status")

// envelope is a message from init with the descriptors that came with it.
type envelope struct {
	msg   message
	files []*os.File
}

// startProcess sends an exec request and waits for init to confirm the
// spawn. Without tty, stdio are the process's three descriptors; with tty,
// init allocates the terminal inside the sandbox and the returned file is
// its controlling side.
func (r *running) startProcess(argv, env []string, tty bool, stdio []*os.File) (int, chan envelope, *os.File, error) {
	r.mu.Lock()
	select {
	case <-r.done:
		r.mu.Unlock()
		return 0, nil, nil, sandbox.ErrNotRunning
	default:
	}
	r.nextID++
	id := r.nextID
	ch := make(chan envelope, 2)
	r.waiters[id] = ch
	r.mu.Unlock()
	fds := make([]int, len(stdio))
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	if err := send(r.ctl, message{Op: opExec, ID: id, Argv: argv, Env: env, TTY: tty}, fds...); err != nil {
		r.mu.Lock()
		delete(r.waiters, id)
		r.mu.Unlock()
		return 0, nil, nil, err
	}
	e := <-ch
	switch e.msg.Op {
	case opStarted:
		var term *os.File
		if len(e.files) > 0 {
			term = e.files[0]
			closeAll(e.files[1:])
		}
		return id, ch, term, nil
	case opError:
		closeAll(e.files)
		return 0, nil, nil, errors.New(e.msg.Error)
	default: // exited before we saw started: hand it back
		ch <- e
		return id, ch, nil, nil
	}
}
