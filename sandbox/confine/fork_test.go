package confine

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStartOnForkThread: concurrent starts succeed, use at most
// maxForkThreads locked threads, and their children (with a parent-death
// signal) outlive threads that the Go runtime ends in the meantime.
func TestStartOnForkThread(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary:", err)
	}
	const n = 40
	cmds := make([]*exec.Cmd, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cmds[i] = exec.Command(sleep, "600")
		cmds[i].SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = StartOnForkThread(cmds[i])
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range cmds {
			if c.Process != nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if got := forkThreads(); got < 1 || got > maxForkThreads {
		t.Fatalf("%d fork threads, want 1..%d", got, maxForkThreads)
	}
	// Threads that end (a goroutine exiting while locked takes its thread)
	// must not be the parents of these children.
	for range 20 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	// A parent-death signal is sent as the thread ends; give any such
	// kill a generous moment to land, then check every child is alive.
	time.Sleep(time.Second)
	for i, c := range cmds {
		if err := c.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("child %d died with a fork thread: %v", i, err)
		}
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(c.Process.Pid, &ws, syscall.WNOHANG, nil); pid != 0 {
			t.Fatalf("child %d exited: %v", i, ws)
		}
	}
}
