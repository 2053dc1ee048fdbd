package local

import (
	"encoding/json"
	"errors"
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
			_ = unix.Kill(-pid, sig.(unix.Signal))
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
			_ = unix.Kill(-1, unix.SIGKILL)
			os.Exit(137)
		}
		if m.Op != opExec || len(files) != 3 || len(m.Argv) == 0 {
			closeAll(files)
			_ = send(ctlFD, message{Op: opError, ID: m.ID, Error: "malformed exec request"})
			continue
		}
		fds := []uintptr{files[0].Fd(), files[1].Fd(), files[2].Fd()}
		err = s.spawn(m.ID, m.Argv, m.Env, fds, m.TTY)
		closeAll(files)
		if err != nil {
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
		_ = send(ctlFD, message{Op: opStarted, ID: m.ID, Pid: pid})
	}
}
