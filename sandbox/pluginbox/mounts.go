package pluginbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

// The box's filesystem is built from nothing, as a local sandbox's is: a
// tmpfs root, read-only once built, holding read-only bind mounts of the
// system directories (host secrets in them masked), the profile's paths at
// their host paths, a fresh /proc for the box's pid namespace, the basic
// device nodes and a private tmpfs /tmp. Nothing else of the host exists
// inside: not $NEMOCLAVE_HOME, not other plugins' sockets, not ~/.ssh.

// mountPoint creates an empty directory or file at dst for src.
func mountPoint(src, dst string) error {
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

func buildRoot(c *config) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := c.RootDir
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mount root tmpfs on %s: %w", root, err)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	if err := os.WriteFile(in(confine.MaskFile), nil, 0); err != nil {
		return err
	}
	tmp := c.TmpBytes
	if tmp == 0 {
		tmp = 64 << 20
	}
	if err := os.MkdirAll(in("/tmp"), 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", in("/tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+strconv.FormatInt(tmp, 10)); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}

	attrs := map[string]uint64{}
	for _, p := range confine.SystemDirs {
		if _, err := os.Stat(p); err == nil {
			attrs[p] = confine.ROAttrs
		}
	}
	attrs[filepath.Dir(c.Binary)] = confine.ROAttrs
	for _, p := range c.ReadOnly {
		attrs[filepath.Clean(p)] = confine.ROAttrs
	}
	for _, p := range c.ReadWrite {
		attrs[filepath.Clean(p)] = confine.RWAttrs
	}
	var paths []string
	for p := range attrs {
		if p == "/proc" || p == "/dev" || under(p, "/proc") || under(p, "/dev") {
			return fmt.Errorf("path %s: /proc and /dev are built by the box, not bound from the host", p)
		}
		paths = append(paths, p)
	}
	// Parents before children, so a child path lands on its parent's mount.
	sort.Slice(paths, func(i, j int) bool {
		ci, cj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		return ci < cj || ci == cj && paths[i] < paths[j]
	})
	for _, p := range paths {
		if err := mountPoint(p, in(p)); err != nil {
			return fmt.Errorf("mount point for %s: %w", p, err)
		}
		if err := confine.BindMount(p, in(p), attrs[p]); err != nil {
			return err
		}
	}
	for _, f := range confine.MaskedFiles {
		if st, err := os.Stat(in(f)); err == nil && !st.IsDir() {
			if err := confine.BindMount(in(confine.MaskFile), in(f), confine.ROAttrs); err != nil {
				return fmt.Errorf("mask %s: %w", f, err)
			}
		}
	}
	for _, d := range confine.MaskedDirs {
		if isDir(in(d)) {
			if err := unix.Mount("tmpfs", in(d), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "mode=0,size=4k"); err != nil {
				return fmt.Errorf("mask %s: %w", d, err)
			}
		}
	}
	if err := mountHosts(c, in); err != nil {
		return err
	}
	if err := mountProc(in); err != nil {
		return err
	}
	if err := mountDev(in); err != nil {
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
		return fmt.Errorf("make the box root read-only: %w", err)
	}
	return nil
}

func mountProc(in func(string) string) error {
	if err := os.MkdirAll(in("/proc"), 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", in("/proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc for the box's pid namespace: %w", err)
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

func mountDev(in func(string) string) error {
	dev := in("/dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range confine.DevNodes {
		if err := mountPoint(n, in(n)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("/dev node %s: %w", n, err)
		}
		if err := confine.BindMount(n, in(n), unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err != nil {
			return err
		}
	}
	for link, target := range map[string]string{"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, in(link)); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k")
}
