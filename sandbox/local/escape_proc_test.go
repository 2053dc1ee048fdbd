package local

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
)

// F14–F16 and the process/kernel rows P1–P10.

// hostSleeper starts a host process with a unique argument the sandbox
// must neither see nor signal.
func hostSleeper(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	arg := strconv.Itoa(900000 + rand.IntN(90000))
	cmd := exec.Command("/bin/sleep", arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, arg
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// hostProcsWith lists host processes whose command line contains s.
func hostProcsWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) && alive(atoi(e.Name())) {
			out = append(out, e.Name()+":"+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestEscape_F14_Proc(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		sleeper, arg := hostSleeper(t)
		pid := strconv.Itoa(sleeper.Process.Pid)
		out, _ := sh(t, mode, `echo "pids: $(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
cat /proc/*/cmdline 2>/dev/null | tr '\0' ' ' | grep -c "slee[p] `+arg+`" || true
cat /proc/1/environ >/dev/null 2>&1 && echo "READ init environ" || echo "denied init environ"
$PROBE read-file /proc/1/environ
$PROBE read-file /proc/1/mem
$PROBE read-file /proc/`+pid+`/mem
$PROBE read-file /proc/`+pid+`/environ`)
		expectLines(t, out, "denied init environ", "read-file: errno=EACCES", "read-file: errno=ENOENT")
		if strings.Contains(out, "READ init") {
			t.Errorf("read PID 1's environment")
		}
		pids := strings.Fields(lineAfter(out, "pids: "))
		if len(pids) == 0 || len(pids) > 6 {
			t.Errorf("sandbox sees %d processes (%v); want only its own handful", len(pids), pids)
		}
		for _, p := range pids {
			if p == pid {
				t.Errorf("host pid %s visible in the sandbox", p)
			}
		}
		if !strings.Contains(out, "\n0\n") {
			t.Errorf("a host process's command line was visible:\n%s", out)
		}
	})
}

func TestEscape_F15_InheritedFDs(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		// Leak-prone descriptors in the supervisor: an open file and a socket.
		f, err := os.Open("/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// The probe lists its own descriptors (minus the one reading
		// /proc/self/fd): exactly what a process exec'd by the agent holds.
		out, _ := sh(t, mode, `$PROBE fds; ls -l /proc/self/fd/`)
		expectLines(t, out, "fds: 0,1,2\n")
	})
}

func TestEscape_F16_TerminalInjection(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE tiocsti; $PROBE tiocsti-high; $PROBE tioclinux; touch /workspace/probed; sleep 300`, func(j *job) {
			j.Attach = []string{"/bin/sh", "-c", `while [ ! -e /workspace/probed ]; do sleep 0.01; done; exec $PROBE tiocsti`}
		})
		before, attached, _ := strings.Cut(out, "--- attach ---")
		expectLines(t, before, "tiocsti: errno=EPERM", "tiocsti-high: errno=EPERM", "tioclinux: errno=EPERM")
		// On a real terminal the request is refused by seccomp, not by a
		// missing terminal (that would be ENOTTY).
		expectLines(t, attached, "tiocsti: errno=EPERM", "attach exit=0")
	})
}

func TestEscape_P1_Ptrace(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE ptrace-attach 1; $PROBE process-vm-readv 1
sleep 100 & $PROBE ptrace-attach $!; kill $!
strace -p 1 2>&1 | head -1 || true`)
		expectLines(t, out, "ptrace-attach: errno=EPERM", "process-vm-readv: errno=EPERM")
		if strings.Contains(out, "ptrace-attach: ok") {
			t.Errorf("ptrace succeeded:\n%s", out)
		}
	})
}

func TestEscape_P2_SignalOutside(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		sleeper, _ := hostSleeper(t)
		pid := strconv.Itoa(sleeper.Process.Pid)
		out, _ := sh(t, mode, `$PROBE kill `+pid+` 9; $PROBE kill 1 15; $PROBE kill 1 9; kill -9 -1 2>/dev/null; echo survived`)
		expectLines(t, out, "kill: errno=ESRCH", "kill: errno=EPERM")
		if !alive(sleeper.Process.Pid) {
			t.Errorf("host process %s was killed from inside the sandbox", pid)
		}
	})
}

func TestEscape_P3_AbstractUnixSocket(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		name := fmt.Sprintf("nemoclave-p3-%d", rand.IntN(1<<30))
		l, err := net.Listen("unix", "@"+name)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("HOST"))
				c.Close()
			}
		}()
		out, _ := sh(t, mode, `$PROBE connect-abstract `+name)
		if strings.Contains(out, "connect-abstract: ok") || !strings.Contains(out, "connect-abstract: errno=") {
			t.Errorf("reached the host's abstract socket:\n%s", out)
		}
	})
}

func TestEscape_P4_HostUnixSockets(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		sock := filepath.Join(dir, "daemon.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		os.Chmod(sock, 0o777)
		res := run(t, mode, dir, ws, job{Argv: []string{"/bin/sh", "-c", `for s in ` + sock + ` /var/run/docker.sock /run/docker.sock /run/dbus/system_bus_socket /run/systemd/private; do $PROBE connect-unix $s; done
echo "ssh agent: ${SSH_AUTH_SOCK:-unset}"`}})
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		if strings.Contains(res.Output, "connect-unix: ok") {
			t.Errorf("reached a host unix socket:\n%s", res.Output)
		}
		expectLines(t, res.Output, "connect-unix: errno=ENOENT", "ssh agent: unset")

		// A policy that would put the host's socket directories in view is
		// refused before anything starts.
		for _, p := range []string{"/run", "/var/run/docker.sock", "/run/user"} {
			pol := testPolicy()
			pol.Filesystem.ReadOnly = append(pol.Filesystem.ReadOnly, p)
			dir, ws := jobDir(t, mode)
			res := run(t, mode, dir, ws, job{Argv: []string{"true"}, Policy: pol})
			if !strings.Contains(res.CreateErr, "daemon sockets") {
				t.Errorf("policy granting %s: want a refusal, got create=%q start=%q", p, res.CreateErr, res.StartErr)
			}
		}
	})
}

func TestEscape_P5_IoUring(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE io-uring-setup`)
		expectLines(t, out, "io-uring-setup: errno=EPERM")
	})
}

// int80Binary compiles a static program that makes a 32-bit syscall with
// int 0x80. gcc is on CI; without it the int 0x80 half is skipped loudly.
func int80Binary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testBase, "bin", "int80")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return ""
	}
	src := filepath.Join(t.TempDir(), "int80.c")
	code := `#include <stdio.h>
int main(void) {
	long ret;
	printf("int80: trying\n"); fflush(stdout);
	__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20) : "memory"); /* i386 getpid */
	printf("int80: returned %ld\n", ret);
	return 0;
}
`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := p + fmt.Sprintf(".%d", rand.IntN(1<<30))
	if out, err := exec.Command(gcc, "-static", "-O0", "-o", tmp, src).CombinedOutput(); err != nil {
		// No static libc: a dynamic binary works too (/usr is mounted).
		if out2, err2 := exec.Command(gcc, "-O0", "-o", tmp, src).CombinedOutput(); err2 != nil {
			t.Fatalf("gcc int80.c: %v\n%s\n%s", err2, out, out2)
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostRefusesInt80 runs the int 0x80 helper outside any sandbox. Some kernels
// (IA32 emulation off, or a hypervisor that does not deliver the 32-bit
// entry) kill it with SIGSEGV before any syscall table is consulted: there
// is no 32-bit syscall path to dodge the filter through, so the half of P6
// that tries one cannot apply there. It returns why, or "" when the host
// does deliver int 0x80 syscalls.
func hostRefusesInt80(t *testing.T, int80 string) string {
	t.Helper()
	out, err := exec.Command(int80).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSEGV {
			return "this kernel has no 32-bit syscall entry: int 0x80 is killed by SIGSEGV outside any sandbox too (" + strings.TrimSpace(string(out)) + ")"
		}
	}
	return ""
}

func TestEscape_P6_CompatSyscalls(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		int80 := int80Binary(t)
		noCompat := ""
		if int80 != "" {
			noCompat = hostRefusesInt80(t, int80)
		}
		if noCompat != "" {
			int80 = ""
		}
		script := `$PROBE x32-getpid; echo "x32 status: $?"`
		if int80 != "" {
			script += "\n" + int80 + `; echo "int80 status: $?"`
		}
		out, _ := sh(t, mode, script)
		// 159 = 128 + SIGSYS: the filter killed the process.
		expectLines(t, out, "x32-getpid: trying", "x32 status: 159")
		if strings.Contains(out, "x32-getpid: ok") || strings.Contains(out, "x32-getpid: errno") {
			t.Errorf("x32 syscall was not killed:\n%s", out)
		}
		if noCompat != "" {
			t.Skip("int 0x80 half skipped: " + noCompat)
		}
		if int80 == "" {
			t.Skip("int 0x80 half skipped: gcc not installed, cannot build the 32-bit syscall helper (CI has gcc)")
		}
		expectLines(t, out, "int80: trying", "int80 status: 159")
		if strings.Contains(out, "int80: returned") {
			t.Errorf("int 0x80 syscall returned instead of killing the process:\n%s", out)
		}
	})
}

func TestEscape_P7_MPTCP(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		out, _ := sh(t, mode, `$PROBE socket 2 1 262; $PROBE socket 10 1 262; $PROBE socket 2 1 262 high; $PROBE socket 2 1 0`)
		if n := strings.Count(out, "socket: errno=EPERM"); n != 3 {
			t.Errorf("want 3 MPTCP sockets refused with EPERM, got %d:\n%s", n, out)
		}
		expectLines(t, out, "socket: ok") // plain TCP still works
	})
}

func TestEscape_P8_KernelSurfaces(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		ops := []string{"bpf", "perf-event-open", "userfaultfd", "keyctl", "add-key", "init-module", "finit-module", "kexec-load"}
		script := ""
		for _, op := range ops {
			script += "$PROBE " + op + "\n"
		}
		out, _ := sh(t, mode, script)
		for _, op := range ops {
			expectLines(t, out, op+": errno=EPERM")
		}
	})
}

func TestEscape_P9_ForkBombAndMemory(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		// perl (Essential on Debian) survives a failed fork; dash would exit.
		out, _ := sh(t, mode, `perl -e '@k=(); for (1..200) { $p=fork(); if (!defined $p) { print "fork failed: $!\n"; last } if (!$p) { sleep 300; exit 0 } push @k, $p } print "forked: ".scalar(@k)."\n"; kill 9, @k; waitpid($_, 0) for @k;'
head -c 1073741824 /dev/zero | tail >/dev/null; echo "tail status: $?"
echo "still here"`, func(j *job) {
			j.Resources = sandbox.Resources{Pids: 48, MemoryBytes: 96 << 20, CPUs: 1}
		})
		n, err := strconv.Atoi(lineAfter(out, "forked: "))
		if err != nil || n >= 48 {
			t.Errorf("pids limit did not hold: forked %q\n%s", lineAfter(out, "forked: "), out)
		}
		expectLines(t, out, "fork failed: Resource temporarily unavailable")
		// 137 = 128 + SIGKILL from the memory cgroup's OOM killer.
		expectLines(t, out, "tail status: 137", "still here")
	})
}

func TestEscape_P10_OrphansKilled(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		t.Run("agent exits", func(t *testing.T) {
			a, b := strconv.Itoa(800000+rand.IntN(90000)), strconv.Itoa(700000+rand.IntN(90000))
			out, _ := sh(t, mode, `setsid nohup sleep `+a+` >/dev/null 2>&1 & (sleep `+b+` &) ; sleep 0; echo spawned; exit 0`)
			expectLines(t, out, "spawned")
			if left := append(hostProcsWith("sleep\x00"+a), hostProcsWith("sleep\x00"+b)...); len(left) > 0 {
				t.Errorf("processes outlived the agent: %v", left)
			}
		})
		t.Run("sandbox deleted", func(t *testing.T) {
			a := strconv.Itoa(600000 + rand.IntN(90000))
			dir, ws := jobDir(t, mode)
			res := run(t, mode, dir, ws, job{
				Argv:           []string{"/bin/sh", "-c", `setsid nohup sleep ` + a + ` >/dev/null 2>&1 & (sleep ` + a + ` &); touch /workspace/ready; sleep 3600`},
				DeleteWhenFile: "ready",
			})
			if res.StartErr != "" || len(res.Leftover) > 0 {
				t.Fatalf("start=%q leftover=%v", res.StartErr, res.Leftover)
			}
			if res.Info.State != sandbox.StateRunning {
				t.Errorf("sandbox was %s when deleted, want running", res.Info.State)
			}
			if left := hostProcsWith("sleep\x00" + a); len(left) > 0 {
				t.Errorf("processes outlived the deleted sandbox: %v", left)
			}
		})
		t.Run("timeout", func(t *testing.T) {
			a := strconv.Itoa(500000 + rand.IntN(90000))
			dir, ws := jobDir(t, mode)
			res := run(t, mode, dir, ws, job{
				Argv:    []string{"/bin/sh", "-c", `(setsid sleep ` + a + ` &); exec sleep 3600`},
				Timeout: 300 * time.Millisecond,
			})
			if res.Info.Reason != "timeout" || res.Info.State != sandbox.StateExited {
				t.Errorf("want exited by timeout, got %s %q", res.Info.State, res.Info.Reason)
			}
			if left := hostProcsWith("sleep\x00" + a); len(left) > 0 {
				t.Errorf("processes outlived the timed-out sandbox: %v", left)
			}
		})
	})
}
