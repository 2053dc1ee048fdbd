package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// PID 1 duties: reap every child (orphans are re-parented to PID 1 inside
// the pid namespace), forward termination signals to the agent's process
// group, run exec requests from the supervisor, and when the agent exits,
// kill everything left, record the exit status and exit. PID 1 exiting
// makes the kernel kill whatever remains in the namespace.

// exitRecord is written to exit.json in the state directory, so a restarted
// supervisor reports the agent's real status.
type exitRecord struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

func (s *initStage) reap(sigs chan os.Signal) int {
	go s.serveControl()
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			s.mu.Lock()
			pid := s.agentPid
			s.mu.Unlock()
			if pid > 0 {
				_ = unix.Kill(-pid, sig.(unix.Signal))
			}
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			s.mu.Lock()
			id, known := s.procs[pid]
			delete(s.procs, pid)
			s.mu.Unlock()
			if !known {
				continue // an orphan re-parented to us
			}
			rec := statusOf(ws)
			if id != 0 {
				_ = send(ctlFD, message{Op: opExited, ID: id, Code: rec.Code, Signal: rec.Signal})
				continue
			}
			return s.finish(rec)
		}
	}
	return exitSetupFailed
}

// finish runs when the agent has exited.
func (s *initStage) finish(rec exitRecord) int {
	_ = unix.Kill(-1, unix.SIGKILL)
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); errors.Is(err, unix.ECHILD) {
			break
		}
	}
	if s.drained != nil {
		// Every writer is dead: the pipe is at EOF once read to its end,
		// so the log holds all the agent wrote before the exit is told.
		<-s.drained
	}
	if b, err := json.Marshal(rec); err == nil {
		if fd, err := unix.Openat(stateFD, "exit.json", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644); err == nil {
			_, _ = unix.Write(fd, b)
			_ = unix.Close(fd)
		}
	}
	_ = send(ctlFD, message{Op: opExited, ID: 0, Code: rec.Code, Signal: rec.Signal})
	if rec.Signal != "" {
		return 128 + int(unix.SignalNum(rec.Signal))
	}
	return rec.Code & 0xff
}

func statusOf(ws unix.WaitStatus) exitRecord {
	rec := exitRecord{Code: ws.ExitStatus(), At: time.Now().UTC()}
	if ws.Signaled() {
		rec.Code = -1
		rec.Signal = unix.SignalName(ws.Signal())
	}
	return rec
}

// serveControl runs exec requests. When the supervisor's end closes, the
// sandbox has no owner left and takes itself down.
func (s *initStage) serveControl() {
	for {
		m, files, err := recv(ctlFD)
		if err != nil {
			closeAll(files)
			fmt.Fprintf(os.Stderr, "nemoclave init: the supervisor's control socket failed (%v); taking the sandbox down\n", err)
			_ = unix.Kill(-1, unix.SIGKILL)
			os.Exit(137)
		}
		var master *os.File
		if m.TTY && len(files) == 0 {
			var slave *os.File
			master, slave, err = openPTY()
			if err != nil {
				_ = send(ctlFD, message{Op: opError, ID: m.ID, Error: err.Error()})
				continue
			}
			files = []*os.File{slave, slave, slave}
		}
		if m.Op != opExec || len(files) != 3 || len(m.Argv) == 0 {
			closeAll(files)
			_ = send(ctlFD, message{Op: opError, ID: m.ID, Error: "malformed exec request"})
			continue
		}
		fds := []uintptr{files[0].Fd(), files[1].Fd(), files[2].Fd()}
		err = s.spawn(m.ID, m.Argv, m.Env, fds, m.TTY)
		if master != nil {
			files = files[:1]
		}
		closeAll(files)
		if err != nil {
			if master != nil {
				master.Close()
			}
			_ = send(ctlFD, message{Op: opError, ID: m.ID, Error: err.Error()})
			continue
		}
		s.mu.Lock()
		pid := 0
		for p, id := range s.procs {
			if id == m.ID {
				pid = p
			}
		}
		s.mu.Unlock()
		if master != nil {
			_ = send(ctlFD, message{Op: opStarted, ID: m.ID, Pid: pid}, int(master.Fd()))
			master.Close()
			continue
		}
		_ = send(ctlFD, message{Op: opStarted, ID: m.ID, Pid: pid})
	}
}

// openPTY allocates a terminal from the sandbox's devpts instance.
func openPTY() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the peer without a path lookup; its argument is
	// the open flags.
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open pty peer: %w", e)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(r, "pty"), nil
}
