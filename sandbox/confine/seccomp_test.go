package confine

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The escape tests prove the filter in a real kernel; this table runs the
// same program in x/net/bpf's VM over hand-made seccomp_data, to pin edge
// cases a live process cannot easily produce (a foreign arch, high bits on
// int arguments).

// seccompData lays out struct seccomp_data for the VM. The kernel loads
// 32-bit words in native (little-endian) order; the VM loads big-endian,
// so each word is written big-endian at the offset of its little-endian
// half.
func seccompData(arch, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

func TestSeccompFilter(t *testing.T) {
	raw, err := BuildSeccomp()
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	const (
		allow = unix.SECCOMP_RET_ALLOW
		kill  = unix.SECCOMP_RET_KILL_PROCESS
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosy = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		x86   = auditArchX8664
		i386  = 0x40000003
	)
	cases := []struct {
		name string
		data []byte
		want uint32
	}{
		{"getpid", seccompData(x86, unix.SYS_GETPID), allow},
		{"int 0x80 (i386 arch)", seccompData(i386, 20), kill},
		{"x32 getpid", seccompData(x86, 0x40000000|unix.SYS_GETPID), kill},
		{"clone3", seccompData(x86, unix.SYS_CLONE3), enosy},
		{"clone thread", seccompData(x86, unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD), allow},
		{"fork via clone", seccompData(x86, unix.SYS_CLONE, uint64(unix.SIGCHLD)), allow},
		{"clone newuser", seccompData(x86, unix.SYS_CLONE, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{"clone newnet", seccompData(x86, unix.SYS_CLONE, unix.CLONE_NEWNET), eperm},
		{"tcp socket", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0), allow},
		{"udp6 socket", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM, 0), allow},
		{"unix socket", seccompData(x86, unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0), allow},
		{"mptcp", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, ipprotoMPTCP), eperm},
		{"mptcp high bits", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET|1<<32, unix.SOCK_STREAM|1<<32, ipprotoMPTCP|1<<32), eperm},
		{"raw socket", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK, unix.IPPROTO_ICMP), eperm},
		{"packet socket", seccompData(x86, unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_DGRAM, 0x300), eperm},
		{"packet socket high bits", seccompData(x86, unix.SYS_SOCKET, unix.AF_PACKET|0xffffffff00000000, unix.SOCK_DGRAM, 0), eperm},
		{"vsock", seccompData(x86, unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM, 0), eperm},
		{"vsock high bits", seccompData(x86, unix.SYS_SOCKET, unix.AF_VSOCK|1<<40, unix.SOCK_STREAM, 0), eperm},
		{"bluetooth", seccompData(x86, unix.SYS_SOCKET, unix.AF_BLUETOOTH, unix.SOCK_RAW, 0), eperm},
		{"netlink route", seccompData(x86, unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_DGRAM, 0), allow},
		{"SOCK_PACKET", seccompData(x86, unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_PACKET, 0), eperm},
		{"ioctl TCGETS", seccompData(x86, unix.SYS_IOCTL, 0, unix.TCGETS), allow},
		{"ioctl TIOCSTI", seccompData(x86, unix.SYS_IOCTL, 0, unix.TIOCSTI), eperm},
		{"ioctl TIOCSTI high bits", seccompData(x86, unix.SYS_IOCTL, 0, unix.TIOCSTI|1<<32), eperm},
		{"ioctl TIOCLINUX", seccompData(x86, unix.SYS_IOCTL, 0, unix.TIOCLINUX), eperm},
		{"ptrace", seccompData(x86, unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1), eperm},
		{"mount", seccompData(x86, unix.SYS_MOUNT), eperm},
		{"io_uring_setup", seccompData(x86, unix.SYS_IO_URING_SETUP), eperm},
		{"unshare", seccompData(x86, unix.SYS_UNSHARE, unix.CLONE_NEWUSER), eperm},
		{"bpf", seccompData(x86, unix.SYS_BPF), eperm},
		{"read", seccompData(x86, unix.SYS_READ), allow},
		{"execve", seccompData(x86, unix.SYS_EXECVE), allow},
	}
	for _, c := range cases {
		got, err := vm.Run(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: filter returned %#x, want %#x", c.name, got, c.want)
		}
	}
}
