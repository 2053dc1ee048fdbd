package confine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The pieces of a sandbox's filesystem that every confined process shares
// (a local sandbox and a plugin box build their roots from them), so a
// secret masked for one is masked for both.

// SystemDirs are mounted read-only (when present on the host) so the
// dynamic loader and libraries resolve; Landlock decides which of them a
// process may actually read.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// MaskedFiles hide host secrets that live in otherwise readable places.
var MaskedFiles = []string{
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/sudoers", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key",
	"/etc/nemoclave/credentials.json",
}

// MaskedDirs hide host directories of secrets the same way.
var MaskedDirs = []string{"/etc/sudoers.d", "/etc/ssl/private"}

// ProcMasks are /proc files that leak host data or accept dangerous writes.
var ProcMasks = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger", "/proc/kallsyms"}

const (
	// ROAttrs and RWAttrs are the mount attributes of read-only and
	// writable bind mounts: never setuid, never device nodes.
	ROAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	RWAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	// MaskFile is an inode nobody may open, bound over masked files.
	MaskFile = "/.masked"
)

// BindMount clones src (recursively) and attaches it at dst with the given
// attributes, using the new mount API so every submount gets them too.
func BindMount(src, dst string, attrs uint64) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("clone mount %s: %w", src, err)
	}
	defer unix.Close(fd)
	if attrs != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attrs}); err != nil {
			return fmt.Errorf("set attributes on %s: %w", src, err)
		}
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach %s at %s: %w", src, dst, err)
	}
	return nil
}
