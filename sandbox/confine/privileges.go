package confine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/policy"
)

// Privileges are dropped on the spawner thread only (capabilities, like
// Landlock domains and seccomp filters, are per thread on Linux, and the
// child of a fork inherits the forking thread's credentials). The rest of
// the init process keeps nothing the agent could borrow: it is
// non-dumpable, so the agent cannot read its memory or environ.

// secureBits locks the thread out of ever regaining capabilities through
// uid 0 (SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, NO_CAP_AMBIENT_RAISE),
// each with its lock bit.
const secureBits = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

// DropPrivileges leaves the calling thread with no capabilities in any set,
// an empty bounding set and no_new_privs.
func DropPrivileges() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// An unprivileged caller (a non-root uid holding no capability, as in
	// the Kubernetes pod) cannot shrink the bounding set or lock securebits,
	// and needs neither: with no_new_privs set, exec grants a non-root uid
	// nothing (no setuid, no file capabilities). Root always must.
	unprivileged := unix.Getuid() != 0 && unix.Geteuid() != 0 && !HasCap(unix.CAP_SETPCAP)
	last := lastCap()
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			if err == unix.EPERM && unprivileged {
				break
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secureBits, 0, 0, 0); err != nil && !(err == unix.EPERM && unprivileged) {
		return fmt.Errorf("lock securebits: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear capabilities: %w", err)
	}
	// Verify rather than trust: a silent failure here would be an escape.
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read back capabilities: %w", err)
	}
	for _, d := range data {
		if d.Effective|d.Permitted|d.Inheritable != 0 {
			return fmt.Errorf("capabilities still present after dropping them")
		}
	}
	return nil
}

// HasCap reports whether the calling thread has capability c effective.
func HasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// SwitchUser makes the calling thread (only) run as ids[0]:ids[1] with no
// supplementary groups. Raw syscalls, because the libc/Go wrappers change
// every thread. Going from uid 0 to a non-zero uid clears the thread's
// capabilities; the bounding set stays, which is harmless for a non-root
// uid under no_new_privs (DropPrivileges' unprivileged path).
func SwitchUser(ids *[2]int) error {
	if ids == nil {
		return nil
	}
	uid, gid := uintptr(ids[0]), uintptr(ids[1])
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop supplementary groups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, gid, gid, gid); e != 0 {
		return fmt.Errorf("switch to gid %d: %w", ids[1], e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uid, uid, uid); e != 0 {
		return fmt.Errorf("switch to uid %d: %w", ids[0], e)
	}
	if unix.Getuid() != ids[0] || unix.Geteuid() != ids[0] || unix.Getgid() != ids[1] {
		return fmt.Errorf("switch to %d:%d did not take", ids[0], ids[1])
	}
	return nil
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 63
}

// ApplyRlimits sets the policy's per-process limits for the init process
// and, by inheritance, everything it spawns. syscall.Setrlimit (not unix)
// is used so the Go runtime does not restore its own RLIMIT_NOFILE in
// children.
func ApplyRlimits(p policy.Process, userns bool) error {
	set := func(res int, v uint64, what string) error {
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("rlimit %s=%d: %w", what, v, err)
		}
		return nil
	}
	if p.MaxOpenFiles > 0 {
		if err := set(unix.RLIMIT_NOFILE, uint64(p.MaxOpenFiles), "max_open_files"); err != nil {
			return err
		}
	}
	if p.MaxFileSizeMB > 0 {
		if err := set(unix.RLIMIT_FSIZE, uint64(p.MaxFileSizeMB)<<20, "max_file_size_mb"); err != nil {
			return err
		}
	}
	if p.CPUSeconds > 0 {
		if err := set(unix.RLIMIT_CPU, uint64(p.CPUSeconds), "cpu_seconds"); err != nil {
			return err
		}
	}
	// RLIMIT_NPROC counts every process of the real uid. In a user
	// namespace that is the sandbox's own uid; as host root it would count
	// the whole host, so there the pids cgroup is the only process limit.
	if p.MaxProcesses > 0 && userns {
		if err := set(unix.RLIMIT_NPROC, uint64(p.MaxProcesses), "max_processes"); err != nil {
			return err
		}
	}
	return nil
}
