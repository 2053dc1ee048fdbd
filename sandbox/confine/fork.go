package confine

import (
	"os/exec"
	"runtime"
	"sync"
)

// The parent-death signal fires when the thread that forked the child
// exits, not the process (golang/go#27505), and the Go runtime does end
// threads (a goroutine that exits while locked to its thread takes the
// thread with it). Every confined child (a sandbox's init stage, a plugin
// box) is therefore forked from one thread that is locked for the life of
// the process, so children die with their supervisor and never earlier.

var (
	forkOnce sync.Once
	forkReqs chan forkReq
)

type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

// StartOnForkThread starts cmd from the process's one locked fork thread.
func StartOnForkThread(cmd *exec.Cmd) error {
	forkOnce.Do(func() {
		forkReqs = make(chan forkReq)
		go func() {
			runtime.LockOSThread() // never unlocked
			for r := range forkReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := forkReq{cmd: cmd, done: make(chan error, 1)}
	forkReqs <- r
	return <-r.done
}
