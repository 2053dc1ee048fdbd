package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockPath is the file whose exclusive flock marks the one daemon of a
// home. The lock, not the socket, decides: a daemon busy reconciling (or
// too loaded to answer a ping in time) still holds it, and the kernel
// drops it when the daemon dies, even by SIGKILL.
func LockPath(home string) string { return filepath.Join(home, "run", "daemon.lock") }

// Lock is a held daemon lock.
type Lock struct{ f *os.File }

// ErrLocked says another daemon holds the lock.
var ErrLocked = errors.New("another nemoclave daemon holds the lock")

// AcquireLock takes the daemon lock of home, before anything reads or
// reconciles state. It retries for a moment, because a CLI probing the
// lock (LockHeld) holds it for an instant; a daemon holding it is
// reported with its pid.
func AcquireLock(home string) (*Lock, error) {
	p := LockPath(home)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock %s: %w", p, err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			pid := readPid(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w (pid %s) on %s; use it, or stop it first with `nemoclave daemon stop`", ErrLocked, pid, p)
			}
			return nil, fmt.Errorf("daemon lock %s: %w", p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The pid is informative only (for the message above); the lock is
	// the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock (the kernel also drops it at exit).
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// LockHeld reports whether a daemon holds home's lock, and its pid when
// known. The CLI asks before starting a daemon, so a daemon that is merely
// slow to answer is waited for, never doubled.
func LockHeld(home string) (bool, string) {
	f, err := os.OpenFile(LockPath(home), os.O_RDONLY, 0)
	if err != nil {
		return false, ""
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK), readPid(f)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, ""
}

func readPid(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "unknown"
}
