package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox"
	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// The sandbox's filesystem is built from nothing: a tmpfs root (read-only
// once built) holding read-only bind mounts of the system, the workspace,
// a fresh /proc, a minimal /dev and a tmpfs /tmp. Files that hold host
// secrets are masked even when their directory is visible. Protected
// workspace paths are read-only bind mounts, and each of their ancestors
// inside the workspace is pinned by a bind mount onto itself so it cannot be
// renamed away (F6). Landlock then narrows what is visible to the policy.

// mountPointFor creates an empty directory or file at dst to mount src on.
func mountPointFor(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	return f.Close()
}

// buildRoot assembles the sandbox filesystem under cfg.Rootfs and pivots
// into it. It runs in the init stage, in the new mount namespace.
func buildRoot(cfg *initConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := cfg.Rootfs
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=4m"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	in := func(p string) string { return filepath.Join(root, p) }

	ro := map[string]bool{}
	for _, p := range confine.SystemDirs {
		ro[p] = true
	}
	for _, p := range cfg.Policy.Filesystem.ReadOnly {
		ro[filepath.Clean(p)] = true
	}
	rw := map[string]bool{}
	for _, p := range cfg.Policy.Filesystem.ReadWrite {
		rw[filepath.Clean(p)] = true
		delete(ro, filepath.Clean(p))
	}
	special := map[string]bool{"/workspace": true, "/tmp": true, "/proc": true, "/dev": true, "/dev/shm": true, binaryDir: true, sandbox.FilesDir: true}

	var paths []string
	for p := range ro {
		paths = append(paths, p)
	}
	for p := range rw {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		return strings.Count(paths[i], "/") < strings.Count(paths[j], "/") || (strings.Count(paths[i], "/") == strings.Count(paths[j], "/") && paths[i] < paths[j])
	})
	for _, p := range paths {
		if p == "/" || special[p] || underSpecial(p, special) {
			continue // built below from scratch, not from the host
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			if rw[p] {
				return fmt.Errorf("read_write path %s does not exist on the host; create it or drop it from the policy", p)
			}
			continue // a read-only path that is absent is simply absent
		}
		if err != nil {
			return fmt.Errorf("inspect %s: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 && filepath.Dir(p) == "/" {
			// /bin -> usr/bin on merged-/usr hosts: recreate the link.
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, in(p)); err != nil {
				return fmt.Errorf("link %s: %w", p, err)
			}
			continue
		}
		if err := mountPointFor(p, in(p)); err != nil {
			return fmt.Errorf("mount point %s: %w", p, err)
		}
		attrs := uint64(confine.ROAttrs)
		if rw[p] {
			attrs = confine.RWAttrs
		}
		if err := confine.BindMount(p, in(p), attrs); err != nil {
			return err
		}
	}
	// Masks are an inode nobody may open (mode 0000, on the root tmpfs
	// that becomes read-only, so not even its owner can chmod it): reading
	// a masked file fails with EACCES instead of returning empty content.
	mask := in(confine.MaskFile)
	if err := os.WriteFile(mask, nil, 0); err != nil {
		return fmt.Errorf("create mask: %w", err)
	}
	if err := os.Chmod(mask, 0); err != nil {
		return fmt.Errorf("create mask: %w", err)
	}
	for _, f := range confine.MaskedFiles {
		if st, err := os.Stat(in(f)); err == nil && !st.IsDir() {
			if err := confine.BindMount(mask, in(f), confine.ROAttrs); err != nil {
				return fmt.Errorf("mask %s: %w", f, err)
			}
		}
	}
	if err := os.Mkdir(in(maskDir), 0); err != nil {
		return fmt.Errorf("create mask: %w", err)
	}
	if err := os.Chmod(in(maskDir), 0); err != nil {
		return fmt.Errorf("create mask: %w", err)
	}
	for _, p := range paths {
		if p == "/" || special[p] || underSpecial(p, special) || systemDir(p) {
			continue
		}
		if err := maskSecretsUnder(root, p); err != nil {
			return err
		}
	}
	for _, d := range confine.MaskedDirs {
		if st, err := os.Stat(in(d)); err == nil && st.IsDir() {
			if err := unix.Mount("tmpfs", in(d), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0000"); err != nil {
				return fmt.Errorf("mask %s: %w", d, err)
			}
		}
	}

	if err := mountBinary(cfg, in); err != nil {
		return err
	}
	if err := writeFiles(cfg, in); err != nil {
		return err
	}
	if err := mountWorkspace(cfg, in("/workspace"), rw["/workspace"]); err != nil {
		return err
	}
	if err := mountScratch(cfg, in); err != nil {
		return err
	}
	if err := mountProc(in); err != nil {
		return err
	}
	if err := mountDev(cfg, in); err != nil {
		return err
	}

	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("make the sandbox root read-only: %w", err)
	}
	return nil
}

func systemDir(p string) bool {
	for _, s := range confine.SystemDirs {
		if p == s {
			return true
		}
	}
	return false
}

func underSpecial(p string, special map[string]bool) bool {
	for s := range special {
		if strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// mountBinary binds the nemoclave binary read-only (but executable) at
// BinaryPath. The host path never appears inside: a sandbox has its own
// /tmp, so a binary under the host's /tmp would not be found at its path.
func mountBinary(cfg *initConfig, in func(string) string) error {
	src := cfg.Binary
	dst := in(BinaryPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("mount point for the nemoclave binary at %s: %w (a policy path that is a parent of %s hides it; grant narrower paths)", BinaryPath, err, binaryDir)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o555)
	if err != nil {
		return fmt.Errorf("mount point for the nemoclave binary at %s: %w", BinaryPath, err)
	}
	f.Close()
	fd, err := unix.Open(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("nemoclave binary %s: %w", src, err)
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone mount of the nemoclave binary %s: %w", src, err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: confine.ROAttrs}); err != nil {
		return fmt.Errorf("read-only nemoclave binary: %w", err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the nemoclave binary at %s: %w", BinaryPath, err)
	}
	return nil
}

// writeFiles places the spec's files on the root tmpfs, which becomes
// read-only after the pivot; the files are 0444 and owned by the init
// stage's uid, which the agent cannot chmod through a read-only mount.
func writeFiles(cfg *initConfig, in func(string) string) error {
	if len(cfg.Files) == 0 {
		return nil
	}
	if err := os.MkdirAll(in(sandbox.FilesDir), 0o755); err != nil {
		return fmt.Errorf("directory for sandbox files at %s: %w (a policy path that is a parent of %s hides it; grant narrower paths)", sandbox.FilesDir, err, sandbox.FilesDir)
	}
	for _, f := range cfg.Files {
		b, err := sandbox.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(in(f.Path), b, 0o444); err != nil {
			return fmt.Errorf("sandbox file %s: %w", f.Path, err)
		}
	}
	return nil
}

func mountWorkspace(cfg *initConfig, dst string, writable bool) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	attrs := uint64(confine.ROAttrs)
	if writable {
		attrs = confine.RWAttrs
	}
	if err := confine.BindMount(cfg.Workspace, dst, attrs); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	return protectPaths(dst, cfg.Protected)
}

func mountScratch(cfg *initConfig, in func(string) string) error {
	size := "size=" + strconv.FormatInt(cfg.TmpBytes, 10)
	if err := os.MkdirAll(in("/tmp"), 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if !policyWritable(cfg, "/tmp") {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", in("/tmp"), "tmpfs", flags, "mode=1777,"+size); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	return nil
}

func policyWritable(cfg *initConfig, p string) bool {
	for _, w := range cfg.Policy.Filesystem.ReadWrite {
		if filepath.Clean(w) == p {
			return true
		}
	}
	return false
}

func mountProc(in func(string) string) error {
	if err := os.MkdirAll(in("/proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", in("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc for the sandbox's pid namespace: %w", err)
	}
	if err := confine.BindMount(in("/proc/sys"), in("/proc/sys"), confine.ROAttrs|unix.MOUNT_ATTR_NOEXEC); err != nil {
		return fmt.Errorf("read-only /proc/sys: %w", err)
	}
	for _, p := range confine.ProcMasks {
		if _, err := os.Stat(in(p)); err != nil {
			continue
		}
		if err := confine.BindMount(in(confine.MaskFile), in(p), confine.ROAttrs); err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

func mountDev(cfg *initConfig, in func(string) string) error {
	dev := in("/dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range confine.DevNodes {
		if err := mountPointFor(n, in(n)); err != nil {
			return fmt.Errorf("/dev node %s: %w", n, err)
		}
		if err := confine.BindMount(n, in(n), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(in("/dev/pts"), 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", in("/dev/pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount /dev/pts: %w", err)
	}
	if err := os.MkdirAll(in("/dev/shm"), 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", in("/dev/shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+strconv.FormatInt(cfg.TmpBytes, 10)); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	for link, target := range map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, in(link)); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k")
}
