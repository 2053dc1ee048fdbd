package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// minWorkspaceBytes is the smallest workspace bound: below it ext4's own
// metadata (inode tables, journal) leaves almost nothing for files.
const minWorkspaceBytes = 8 << 20

// Volume bounds a workspace's total size for one run (P11): the
// workspace's files are copied into a sparse ext4 image of the bound's
// size (mkfs.ext4 -d, no mount needed), the image is loop-mounted over the
// workspace directory on the host, and when the sandbox ends the image's
// files are copied back into the directory and the image removed.
//
// The mount is at the workspace path itself, in the supervisor's mount
// namespace, so the agent (through its bind mount) and host-side writers
// (the gateway tools, documents) see the same files and share the bound:
// a write past it fails with "No space left on device" and the host disk
// never holds more than the image. Between runs the directory is the
// user's, as without a bound.
//
// If the daemon dies mid-run the image stays (mounted until unmounted, and
// on disk); the next Mount of that workspace refuses and says where the
// files are.
type Volume struct {
	// under is the workspace directory as it was before the mount, opened
	// first: the copy back writes into it through /proc/self/fd while the
	// image still covers the path.
	image     string
	workspace string
	under     *os.File
}

// Image is where the image of a workspace lives below dir (the daemon's
// $NEMOCLAVE_HOME/volumes): one per workspace path, so two sandboxes on
// one workspace never each mount their own image over it; named for a
// human reading the directory.
func Image(dir, workspace string) string {
	sum := sha256.Sum256([]byte(workspace))
	return filepath.Join(dir, filepath.Base(workspace)+"-"+hex.EncodeToString(sum[:4])+".img")
}

// ErrUnsupported says the bound cannot be applied on this host; the
// sandbox refuses to start unless resources.allow_unlimited is set.
var ErrUnsupported = errors.New("resources.workspace_size needs a supervisor running as root (it loop-mounts an ext4 image over the workspace); run the daemon as root, remove workspace_size, or set allow_unlimited = true to run without the bound")

// MinBytes is the smallest bound: below it ext4's own metadata (inode
// tables, journal) leaves almost nothing for files.
const MinBytes = minWorkspaceBytes

// Mount bounds workspace (an absolute directory) to size bytes with an
// image at image (see Image). The caller calls Release when the sandbox and
// every host-side writer of the workspace are done. Mount it before
// anything opens the workspace: a descriptor opened earlier keeps writing
// to the directory under the mount.
func Mount(image, workspace string, size int64) (*Volume, error) {
	if os.Geteuid() != 0 {
		return nil, ErrUnsupported
	}
	if size < MinBytes {
		return nil, fmt.Errorf("resources.workspace_size %d bytes is below the %d MiB minimum", size, MinBytes>>20)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return nil, errors.New("resources.workspace_size needs mkfs.ext4 to build the workspace image: install e2fsprogs (apt-get install e2fsprogs)")
	}
	if _, err := os.Lstat(image); err == nil {
		return nil, fmt.Errorf("workspace %s: the image %s already exists: either another sandbox on this workspace is running, or an earlier run ended without copying its files back (the supervisor was killed). Those files are in the image: stop the other sandbox, or recover them with `mount -o loop,ro %s /mnt && cp -a /mnt/. %s/ && umount /mnt` (first `umount %s` if it is still mounted there), then delete the image", workspace, image, image, workspace, workspace)
	}
	used, err := treeBytes(workspace)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: measure its size: %w", workspace, err)
	}
	if used > size*9/10 {
		return nil, fmt.Errorf("workspace %s holds %d MiB, more than 90%% of resources.workspace_size (%d MiB): raise workspace_size or clear the workspace", workspace, used>>20, size>>20)
	}
	var st unix.Stat_t
	if err := unix.Stat(workspace, &st); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(image), 0o700); err != nil {
		return nil, fmt.Errorf("create the volume directory: %w", err)
	}
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the workspace image: %w", err)
	}
	err = f.Truncate(size) // sparse: the host holds only what is written
	f.Close()
	if err != nil {
		os.Remove(image)
		return nil, fmt.Errorf("size the workspace image: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.Command(mkfs, "-q", "-F", "-t", "ext4", "-m", "0", "-d", workspace,
		"-E", fmt.Sprintf("root_owner=%d:%d", st.Uid, st.Gid), image)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.Remove(image)
		return nil, fmt.Errorf("build the workspace image with mkfs.ext4 -d (nothing was changed in %s): %w: %s", workspace, err, strings.TrimSpace(out.String()))
	}
	hadLostFound := false
	if _, err := os.Lstat(filepath.Join(workspace, "lost+found")); err == nil {
		hadLostFound = true
	}
	under, err := os.Open(workspace)
	if err != nil {
		os.Remove(image)
		return nil, err
	}
	out.Reset()
	cmd = exec.Command("mount", "-t", "ext4", "-o", "loop,nosuid,nodev", image, workspace)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		under.Close()
		os.Remove(image)
		return nil, fmt.Errorf("loop-mount the workspace image over %s (nothing was changed there): %w: %s", workspace, err, strings.TrimSpace(out.String()))
	}
	v := &Volume{image: image, workspace: workspace, under: under}
	if !hadLostFound {
		// mkfs's lost+found would be copied back as a new directory.
		_ = os.Remove(filepath.Join(workspace, "lost+found"))
	}
	return v, nil
}

// Release copies the image's files back into the workspace directory,
// unmounts the image and removes it. If the copy fails the image is kept
// and the error says where the files are.
func (v *Volume) Release() error {
	if v == nil {
		return nil
	}
	defer v.under.Close()
	under, err := os.OpenRoot(fmt.Sprintf("/proc/self/fd/%d", v.under.Fd()))
	if err == nil {
		err = mirror(v.workspace, under)
		under.Close()
	}
	if err != nil {
		return fmt.Errorf("copy the workspace's files back from its image failed (%w); they are in %s, still mounted at %s: copy them out before unmounting it, then delete the image", err, v.image, v.workspace)
	}
	if err := unix.Unmount(v.workspace, 0); err != nil {
		// Busy (a host process works in it): detach; the files are
		// already back in the directory.
		if err := unix.Unmount(v.workspace, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount the workspace image at %s: %w; the files were copied back, unmount it and delete %s", v.workspace, err, v.image)
		}
	}
	return os.Remove(v.image)
}

// treeBytes is the apparent size of the files under dir.
func treeBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			info, err := e.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// mirror makes dst hold exactly the tree at src: new and changed entries
// are copied (a regular file whose size and modification time match is
// left alone), entries missing from src are removed. dst is an os.Root,
// so a symbolic link the agent left in the tree is copied as a link and
// never followed out of the workspace. Ownership, modes and times follow
// src (without set-id bits on files); FIFOs, sockets and devices are not
// copied, nor are hard links kept (each name gets its own copy).
func mirror(src string, dst *os.Root) error {
	var dirs []string
	var errs []error
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if err := mirrorEntry(src, rel, info, dst); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rel, err))
			if info.IsDir() {
				return fs.SkipDir
			}
		}
		if info.IsDir() {
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Entries the run removed.
	err = fs.WalkDir(dst.FS(), ".", func(rel string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if _, err := os.Lstat(filepath.Join(src, rel)); errors.Is(err, fs.ErrNotExist) {
			if err := dst.RemoveAll(rel); err != nil {
				errs = append(errs, err)
			}
			if e.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last, deepest first: every change above moved them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if info, err := os.Lstat(filepath.Join(src, dirs[i])); err == nil {
			_ = dst.Chtimes(dirs[i], info.ModTime(), info.ModTime())
		}
	}
	return errors.Join(errs...)
}

// mirrorEntry copies one entry of src to dst (rel is "." for the root).
func mirrorEntry(src, rel string, info fs.FileInfo, dst *os.Root) error {
	have, err := dst.Lstat(rel)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	exists := err == nil
	mode := info.Mode()
	if exists && have.Mode().Type() != mode.Type() {
		if rel == "." {
			return errors.New("the workspace directory changed type")
		}
		if err := dst.RemoveAll(rel); err != nil {
			return err
		}
		exists = false
	}
	switch {
	case mode.IsDir():
		if !exists {
			if err := dst.Mkdir(rel, 0o700); err != nil {
				return err
			}
		}
	case mode.IsRegular():
		if exists && have.Size() == info.Size() && have.ModTime().Equal(info.ModTime()) {
			break
		}
		if err := copyInto(filepath.Join(src, rel), rel, dst); err != nil {
			return err
		}
	case mode.Type() == fs.ModeSymlink:
		target, err := os.Readlink(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		if exists {
			if t, err := dst.Readlink(rel); err == nil && t == target {
				break
			}
			if err := dst.Remove(rel); err != nil {
				return err
			}
		}
		if err := dst.Symlink(target, rel); err != nil {
			return err
		}
	default:
		return nil // FIFOs, sockets, devices
	}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		if err := dst.Lchown(rel, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	if mode.Type() == fs.ModeSymlink {
		return nil
	}
	// No set-id bits on files: the agent made them (nosuid inside).
	perm := mode & fs.ModePerm
	if mode.IsDir() {
		perm |= mode & (fs.ModeSetgid | fs.ModeSticky)
	}
	if err := dst.Chmod(rel, perm); err != nil {
		return err
	}
	return dst.Chtimes(rel, info.ModTime(), info.ModTime())
}

// copyInto writes src's content to rel in dst through a temporary name
// renamed over it, so an interrupted copy never leaves a half file.
func copyInto(src, rel string, dst *os.Root) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(filepath.Dir(rel), ".nemoclave-copy-"+filepath.Base(rel))
	out, err := dst.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dst.Rename(tmp, rel)
	}
	if err != nil {
		_ = dst.Remove(tmp)
	}
	return err
}
