package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// TestProcStartMatchesProcfs checks the init stage's own /proc/<pid>/stat
// parse (kept out of prometheus/procfs for the init stage's start-up cost)
// against procfs: for this process, for a process whose command name holds
// spaces and parentheses, and that zombies and absent pids read as 0.
func TestProcStartMatchesProcfs(t *testing.T) {
	want := func(pid int) uint64 {
		t.Helper()
		p, err := procfs.NewProc(pid)
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return st.Starttime
	}
	if got, w := procStart(os.Getpid()), want(os.Getpid()); got != w || got == 0 {
		t.Fatalf("procStart(self) = %d, procfs says %d", got, w)
	}

	// A command name that would confuse a parse splitting at the first ')'.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary:", err)
	}
	odd := filepath.Join(t.TempDir(), "a) b (c")
	if err := os.Symlink(sleep, odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got, w := procStart(pid), want(pid); got != w || got == 0 {
		t.Fatalf("procStart(%d, odd name) = %d, procfs says %d", pid, got, w)
	}
	_ = cmd.Process.Kill()
	// Not reaped yet: a zombie, which reads as gone. Wait for the state to
	// show (the kill is asynchronous), with a generous deadline.
	deadline := time.Now().Add(30 * time.Second)
	for procStart(pid) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("procStart of a killed, unreaped process is still %d", procStart(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if got := procStart(pid); got != 0 {
		t.Fatalf("procStart of a reaped process = %d, want 0", got)
	}
}
