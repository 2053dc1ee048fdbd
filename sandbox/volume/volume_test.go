package volume

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting the workspace image needs root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices here (/dev/loop-control): " + err.Error())
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
	}
}

// fill writes zeros to path until the file system refuses or limit bytes
// are written, and returns the error that stopped it.
func fill(t *testing.T, path string, limit int64) (int64, error) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for n < limit {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
	}
	return n, f.Sync()
}

func TestMountBoundsAndCopiesBack(t *testing.T) {
	needRoot(t)
	ws := t.TempDir()
	volumes := t.TempDir()
	for name, body := range map[string]string{"keep.txt": "kept", "gone.txt": "removed in the run", "sub/edit.txt": "old"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(ws, "keep.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	image := Image(volumes, ws)
	v, err := Mount(image, ws, 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			_ = v.Release()
		}
	})
	if b, err := os.ReadFile(filepath.Join(ws, "sub/edit.txt")); err != nil || string(b) != "old" {
		t.Fatalf("the image does not hold the workspace's files: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(ws, "lost+found")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mkfs's lost+found is visible in the workspace: %v", err)
	}
	// The bound: the write fails with ENOSPC near it.
	n, err := fill(t, filepath.Join(ws, "big"), 64<<20)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling a 32 MiB workspace with 64 MiB: wrote %d bytes, err %v; want ENOSPC", n, err)
	}
	if n > 32<<20 {
		t.Fatalf("wrote %d bytes past the 32 MiB bound", n)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(image, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 33<<20 {
		t.Errorf("the image holds %d bytes on the host disk, past the bound", st.Blocks*512)
	}
	// A second mount of the same workspace is refused while this one runs.
	if _, err := Mount(image, ws, 32<<20); err == nil || !strings.Contains(err.Error(), image) {
		t.Fatalf("second Mount: %v; want a refusal naming the image", err)
	}
	// Changes made during the run.
	if err := os.Remove(filepath.Join(ws, "big")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "sub/edit.txt"), []byte("new text"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ws, "made/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "made/deep/f"), []byte("x"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(ws, "made/deep/f"), 0o4755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(ws, "link")); err != nil {
		t.Fatal(err)
	}
	released = true
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(image); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("image kept after a successful copy back: %v", err)
	}
	var wst, pst syscall.Stat_t
	if err := syscall.Stat(ws, &wst); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Dir(ws), &pst); err != nil {
		t.Fatal(err)
	}
	if wst.Dev != pst.Dev {
		t.Fatal("the workspace is still a mount point after Release")
	}
	want := map[string]string{"keep.txt": "kept", "sub/edit.txt": "new text", "made/deep/f": "x"}
	for name, body := range want {
		if b, err := os.ReadFile(filepath.Join(ws, name)); err != nil || string(b) != body {
			t.Errorf("%s after the run: %q %v; want %q", name, b, err, body)
		}
	}
	for _, name := range []string{"gone.txt", "big"} {
		if _, err := os.Lstat(filepath.Join(ws, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was removed in the run but is back: %v", name, err)
		}
	}
	if info, err := os.Stat(filepath.Join(ws, "keep.txt")); err != nil || !info.ModTime().Equal(old) {
		t.Errorf("keep.txt lost its modification time: %v %v", info.ModTime(), err)
	}
	if info, err := os.Stat(filepath.Join(ws, "made/deep/f")); err != nil || info.Mode()&os.ModeSetuid != 0 {
		t.Errorf("a set-uid file made in the run kept the bit on the host: %v %v", info.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(ws, "link")); err != nil || target != outside {
		t.Errorf("link copied back as %q %v; want a link to %s", target, err, outside)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the copy back wrote through the link: %v", entries)
	}
}

func TestMountRefusesLeftoverImage(t *testing.T) {
	needRoot(t)
	ws := t.TempDir()
	image := Image(t.TempDir(), ws)
	if err := os.WriteFile(image, []byte("files of a run that did not end"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Mount(image, ws, 16<<20)
	if err == nil || !strings.Contains(err.Error(), "mount -o loop,ro "+image) {
		t.Fatalf("Mount over a leftover image: %v; want a refusal saying how to recover its files", err)
	}
	if b, _ := os.ReadFile(image); string(b) != "files of a run that did not end" {
		t.Fatal("the leftover image was changed")
	}
}

func TestMountRefusesFullWorkspace(t *testing.T) {
	needRoot(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "big"), make([]byte, 15<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	image := Image(t.TempDir(), ws)
	_, err := Mount(image, ws, 16<<20)
	if err == nil || !strings.Contains(err.Error(), "raise workspace_size") {
		t.Fatalf("Mount of a workspace larger than the bound: %v", err)
	}
	if _, err := os.Lstat(image); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Mount left an image: %v", err)
	}
}

func TestMountBelowMinimum(t *testing.T) {
	needRoot(t)
	if _, err := Mount(filepath.Join(t.TempDir(), "x.img"), t.TempDir(), 1<<20); err == nil {
		t.Fatal("a 1 MiB bound was accepted")
	}
}

// BenchmarkMountRelease is the cost workspace_size adds to a run: build
// the image from a workspace of 200 files (20 MiB), mount it, change one
// file, copy back and unmount.
func BenchmarkMountRelease(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("loop-mounting the workspace image needs root")
	}
	ws := b.TempDir()
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(ws, "f"+strconv.Itoa(i)), make([]byte, 100<<10), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	image := Image(b.TempDir(), ws)
	for b.Loop() {
		v, err := Mount(image, ws, 256<<20)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, "f0"), []byte("changed"), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := v.Release(); err != nil {
			b.Fatal(err)
		}
	}
}
