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
// box) is therefore forked from a thread that is locked for the life of
// the process, so children die with their supervisor and never earlier.
//
// There are up to maxForkThreads such threads, started as concurrent starts
// need them: a start holds its thread from the clone until the child has
// executed (Go forks with CLONE_VFORK), and with one thread, 50 sandboxes
// started at once queued there for most of their time to ready (a block
// profile of the 50-concurrent bench: 65 % of all blocked goroutine time
// was the send to the one fork thread). The Go runtime lets forks from
// several threads proceed at once (syscall.ForkLock is shared by
// concurrent forks).

// maxForkThreads bounds the locked fork threads; each one lives as long as
// the process.
const maxForkThreads = 8

var (
	forkMu    sync.Mutex
	forkIdle  int // threads waiting for a request
	forkCount int // threads started
	forkReqs  = make(chan forkReq)
)

type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

// StartOnForkThread starts cmd from one of the process's locked fork
// threads.
func StartOnForkThread(cmd *exec.Cmd) error {
	forkMu.Lock()
	if forkIdle == 0 && forkCount < maxForkThreads {
		forkCount++
		forkIdle++
		go forkThread()
	}
	forkMu.Unlock()
	r := forkReq{cmd: cmd, done: make(chan error, 1)}
	forkReqs <- r
	return <-r.done
}

// forkThread serves start requests on its own OS thread, forever: it never
// returns and never unlocks, so the thread (the parent of every child it
// forks) never ends before the process.
func forkThread() {
	runtime.LockOSThread()
	for r := range forkReqs {
		forkMu.Lock()
		forkIdle--
		forkMu.Unlock()
		r.done <- r.cmd.Start()
		forkMu.Lock()
		forkIdle++
		forkMu.Unlock()
	}
}

// forkThreads reports how many fork threads were started (for tests).
func forkThreads() int {
	forkMu.Lock()
	defer forkMu.Unlock()
	return forkCount
}
