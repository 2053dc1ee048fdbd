package local

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
)

// The probe is this test binary run inside a sandbox with
// NEMOCLAVE_TEST_PROBE=1 and one operation as arguments. It attempts the
// operation with a raw system call, prints "<op>: ok" or
// "<op>: errno=<NAME>", and exits 0, so a sandbox script runs many probes
// and the test reads every answer from the agent log. Raw syscalls keep
// libc fallbacks from hiding what the kernel said.

const probeEnv = "NEMOCLAVE_TEST_PROBE"

func probeMain() bool {
	if os.Getenv(probeEnv) == "" || len(os.Args) < 2 {
		return false
	}
	op, args := os.Args[1], os.Args[2:]
	err := probe(op, args)
	switch e := err.(type) {
	case nil:
		fmt.Printf("%s: ok\n", op)
	case syscall.Errno:
		fmt.Printf("%s: errno=%s\n", op, unix.ErrnoName(e))
	default:
		fmt.Printf("%s: error=%v\n", op, err)
	}
	os.Exit(0)
	return true
}

func arg(args []string, i int) int {
	if i >= len(args) {
		return 0
	}
	n, _ := strconv.Atoi(args[i])
	return n
}

func errnoOf(_, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func probe(op string, args []string) error {
	switch op {
	case "ptrace-attach":
		return errnoOf(unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(arg(args, 0)), 0))
	case "process-vm-readv":
		var buf [8]byte
		local := unix.Iovec{Base: &buf[0], Len: 8}
		remote := unix.Iovec{Base: &buf[0], Len: 8}
		return errnoOf(unix.RawSyscall6(unix.SYS_PROCESS_VM_READV, uintptr(arg(args, 0)), uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0))
	case "io-uring-setup":
		var params [120]byte
		return errnoOf(unix.RawSyscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params[0])), 0))
	case "bpf":
		var attr [128]byte
		return errnoOf(unix.RawSyscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), 128))
	case "perf-event-open":
		attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		return errnoOf(unix.RawSyscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&attr)), 0, ^uintptr(0), ^uintptr(0), 0, 0))
	case "userfaultfd":
		return errnoOf(unix.RawSyscall(unix.SYS_USERFAULTFD, 0, 0, 0))
	case "keyctl":
		return errnoOf(unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, ^uintptr(2), 0))
	case "add-key":
		t, _ := unix.BytePtrFromString("user")
		d, _ := unix.BytePtrFromString("x")
		return errnoOf(unix.RawSyscall6(unix.SYS_ADD_KEY, uintptr(unsafe.Pointer(t)), uintptr(unsafe.Pointer(d)), 0, 0, ^uintptr(3), 0))
	case "init-module":
		return errnoOf(unix.RawSyscall(unix.SYS_INIT_MODULE, 0, 0, 0))
	case "finit-module":
		return errnoOf(unix.RawSyscall(unix.SYS_FINIT_MODULE, 0, 0, 0))
	case "kexec-load":
		return errnoOf(unix.RawSyscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0))
	case "socket": // family type protocol [high]
		hi := uintptr(0)
		if len(args) > 3 {
			hi = 1 << 32
		}
		fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(arg(args, 0))|hi, uintptr(arg(args, 1))|hi, uintptr(arg(args, 2))|hi)
		if e == 0 {
			unix.Close(int(fd))
		}
		return errnoOf(0, 0, e)
	case "tiocsti", "tiocsti-high", "tioclinux":
		req := uintptr(unix.TIOCSTI)
		if op == "tioclinux" {
			req = unix.TIOCLINUX
		}
		if op == "tiocsti-high" {
			req |= 1 << 32
		}
		c := byte('x')
		return errnoOf(unix.RawSyscall(unix.SYS_IOCTL, 0, req, uintptr(unsafe.Pointer(&c))))
	case "mknod-char", "mknod-block":
		mode := uint32(unix.S_IFCHR | 0o666)
		if op == "mknod-block" {
			mode = unix.S_IFBLK | 0o666
		}
		return unix.Mknod(args[0], mode, int(unix.Mkdev(1, 3)))
	case "chroot":
		return unix.Chroot("/tmp")
	case "pivot-root":
		return unix.PivotRoot("/tmp", "/tmp")
	case "open-by-handle-at":
		var h [8 + 128]byte
		cwd := unix.AT_FDCWD
		return errnoOf(unix.RawSyscall6(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(cwd), uintptr(unsafe.Pointer(&h[0])), 0, 0, 0, 0))
	case "mount-tmpfs":
		return unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "")
	case "remount-root-rw":
		return unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND, "")
	case "umount-proc":
		return unix.Unmount("/proc", unix.MNT_DETACH)
	case "unshare-user":
		return errnoOf(unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0))
	case "unshare-net":
		return errnoOf(unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET, 0, 0))
	case "clone-newuser":
		// A raw clone that would create a namespace; if it succeeded the
		// child exits at once (it shares nothing with the Go runtime).
		pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 && pid == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		return errnoOf(0, 0, e)
	case "clone3":
		return errnoOf(unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0))
	case "setns":
		return errnoOf(unix.RawSyscall(unix.SYS_SETNS, 0, 0, 0))
	case "kill":
		return unix.Kill(arg(args, 0), unix.Signal(arg(args, 1)))
	case "connect-abstract":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + args[0]})
	case "connect-unix":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrUnix{Name: args[0]})
	case "connect-tcp":
		return connectTCP(args[0])
	case "tcp-read":
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return unwrapErrno(err)
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 64))
		fmt.Printf("tcp-read: got %q\n", b)
		return nil
	case "udp-send":
		c, err := net.Dial("udp", args[0])
		if err != nil {
			return unwrapErrno(err)
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return unwrapErrno(err)
	case "http-get":
		resp, err := http.Get(args[0])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("http-get: status=%d body=%q\n", resp.StatusCode, b)
		return nil
	case "confine":
		return probeConfine()
	case "x32-getpid":
		fmt.Println("x32-getpid: trying")
		_, _, e := unix.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
		return errnoOf(0, 0, e)
	case "read-file":
		_, err := os.ReadFile(args[0])
		return unwrapErrno(err)
	case "fds":
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return unwrapErrno(err)
		}
		var names []string
		for _, e := range ents {
			if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(t, "/proc/") {
				names = append(names, e.Name())
			}
		}
		fmt.Printf("fds: %s\n", strings.Join(names, ","))
		return nil
	}
	return fmt.Errorf("unknown probe %q", op)
}

func connectTCP(addr string) error {
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if ip4 := ap.IP.To4(); ip4 != nil && !strings.Contains(addr, "[") {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: ap.Port, Addr: [4]byte(ip4)}
	} else {
		sa = &unix.SockaddrInet6{Port: ap.Port, Addr: [16]byte(ap.IP.To16())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, sa)
}

func unwrapErrno(err error) error {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
	return nil
}

// probeConfine is what the Kubernetes driver's in-pod supervisor does: lock
// a thread that is not the leader, Confine it, fork a shell from it.
func probeConfine() error {
	p := &policy.Policy{Name: "confine", UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{
		ReadOnly: []string{"/usr", "/bin", "/lib", "/lib64", "/etc"}, ReadWrite: []string{"/dev/null"},
	}}
	done := make(chan error)
	var confined func()
	confined = func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if unix.Gettid() == unix.Getpid() {
			go confined() // Confine refuses the leader: park it, use another thread
			select {}
		}
		if _, err := Confine(p, nil); err != nil {
			done <- err
			return
		}
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", `grep -E "^(NoNewPrivs|CapEff|Seccomp):" /proc/self/status
cat /etc/hostname >/dev/null && echo "confined: read /etc"
cat /proc/1/status >/dev/null 2>&1; echo x > /tmp/confine-probe 2>/dev/null && echo "WROTE /tmp" || echo "confined: write denied"
unshare -U true 2>/dev/null && echo "UNSHARE worked" || echo "confined: unshare denied"`},
			&syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Env: []string{"PATH=/usr/bin:/bin"}})
		if err != nil {
			done <- err
			return
		}
		var ws syscall.WaitStatus
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		done <- err
	}
	go confined()
	return <-done
}
