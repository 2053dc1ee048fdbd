package confine

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp filter has two parts, run in this order:
//
//  1. A guard assembled here with golang.org/x/net/bpf. It kills the process
//     on any architecture but x86-64 (int 0x80 arrives as AUDIT_ARCH_I386)
//     and on x32 syscall numbers, returns ENOSYS for clone3 (its flags live
//     in memory a filter cannot read, and libc falls back to clone), and
//     filters the arguments go-seccomp-bpf cannot express safely: its
//     conditions compare all 64 bits, while the kernel truncates int
//     arguments (socket family/type/protocol, the ioctl request) to 32, so
//     a caller could set high bits to slip past. Here only the low word is
//     loaded, as the kernel uses it.
//  2. go-seccomp-bpf's name-based deny list, which returns EPERM. It is
//     assembled at generation time (seccomp_deny_gen.go, by ./gendeny) and
//     carried as data: linking go-seccomp-bpf cost every sandbox's init
//     stage the package initialisation of its syscall tables for every
//     architecture. TestSeccompDenyGenerated keeps the data equal to what
//     go-seccomp-bpf assembles from DeniedSyscalls.
//
// Everything not denied is allowed: the point is to close the kernel
// surfaces SECURITY-TESTS.md names, not to emulate a container runtime's
// allow list.

//go:generate go run ./gendeny

// DeniedSyscalls return EPERM. After changing the list, run
// `go generate ./sandbox/confine`.
var DeniedSyscalls = []string{
	// tracing and other processes' memory (P1)
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// the mount family and root changes (F11, F13)
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
	// namespaces (F12)
	"unshare", "setns",
	// kernel attack surface (P5, P8)
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module",
	// host-wide state
	"swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "iopl", "ioperm",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "uselib", "lookup_dcookie",
	"fanotify_init", "personality",
}

const (
	auditArchX8664 = 0xc000003e
	x32SyscallBit  = 0x40000000

	retKill  = unix.SECCOMP_RET_KILL_PROCESS
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retNoSys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

	offNr   = 0
	offArch = 4
	offArg0 = 16 // args[i] low word at 16+8*i on little-endian x86-64

	ipprotoMPTCP = 262
	// cloneNewMask is every CLONE_NEW* flag clone(2) accepts (CLONE_NEWTIME
	// only exists for clone3/unshare, which are denied outright).
	cloneNewMask = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
		unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
)

// argGuard builds part 1. Every path either returns or falls through to
// the end of the slice, where part 2 begins.
func argGuard() []bpf.Instruction {
	ld := func(off uint32) bpf.Instruction { return bpf.LoadAbsolute{Off: off, Size: 4} }
	ret := func(v uint32) bpf.Instruction { return bpf.RetConstant{Val: v} }

	// Each block returns EPERM from its last instruction or, on no match,
	// reloads the syscall number and jumps past the blocks after it.
	// AF_VSOCK, AF_BLUETOOTH and AF_KCM are refused because they are not
	// confined by the network namespace: vsock in particular reaches the
	// hypervisor host (CID 2) from inside a VM.
	socketBlk := []bpf.Instruction{
		ld(offArg0), // family
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_PACKET, SkipTrue: 11},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_VSOCK, SkipTrue: 10},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_BLUETOOTH, SkipTrue: 9},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_KCM, SkipTrue: 8},
		ld(offArg0 + 8), // type, without SOCK_NONBLOCK/SOCK_CLOEXEC
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SOCK_RAW, SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SOCK_PACKET, SkipTrue: 4},
		ld(offArg0 + 16), // protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ipprotoMPTCP, SkipTrue: 2},
		ld(offNr),
		bpf.Jump{}, // patched below
		ret(retEPERM),
	}
	ioctlBlk := []bpf.Instruction{
		ld(offArg0 + 8), // request, as the kernel's unsigned int
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCSTI, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCLINUX, SkipTrue: 2},
		ld(offNr),
		bpf.Jump{}, // patched below
		ret(retEPERM),
	}
	cloneBlk := []bpf.Instruction{
		ld(offArg0), // flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: cloneNewMask, SkipTrue: 2},
		ld(offNr),
		bpf.Jump{Skip: 1},
		ret(retEPERM),
	}

	prog := []bpf.Instruction{
		ld(offArch),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArchX8664, SkipTrue: 1},
		ret(retKill),
		ld(offNr),
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipFalse: 1},
		ret(retKill),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_CLONE3, SkipFalse: 1},
		ret(retNoSys),
	}
	// Dispatch: three tests, each jumping to its block; no match skips all
	// blocks. Layout: [dispatch (4)] [socketBlk] [ioctlBlk] [cloneBlk] end.
	s, i, c := len(socketBlk), len(ioctlBlk), len(cloneBlk)
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_SOCKET, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_IOCTL, SkipTrue: uint8(2 + s)},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_CLONE, SkipTrue: uint8(1 + s + i)},
		bpf.Jump{Skip: uint32(s + i + c)},
	)
	// Each block ends by jumping over the blocks after it.
	socketBlk[len(socketBlk)-2] = bpf.Jump{Skip: uint32(1 + i + c)}
	ioctlBlk[len(ioctlBlk)-2] = bpf.Jump{Skip: uint32(1 + c)}
	prog = append(prog, socketBlk...)
	prog = append(prog, ioctlBlk...)
	prog = append(prog, cloneBlk...)
	return prog
}

// BuildSeccomp assembles the whole filter.
func BuildSeccomp() ([]bpf.RawInstruction, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp: the sandbox filter is written for x86-64, not %s; refusing to run without it", runtime.GOARCH)
	}
	guard, err := bpf.Assemble(argGuard())
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble filter: %w", err)
	}
	// Part 1 jumps only within itself and falls through to part 2, so
	// appending the assembled deny list equals assembling both at once.
	raw := append(guard, denyProgram...)
	return raw, nil
}

// LoadSeccomp installs the filter on the calling thread only (no TSYNC):
// the spawner thread, whose children inherit it. no_new_privs must be set.
func LoadSeccomp(raw []bpf.RawInstruction) error {
	filters := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filters[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filters)
	if errno != 0 {
		return fmt.Errorf("seccomp: load filter: %w", errno)
	}
	return nil
}
