package pluginbox

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// verify trusts an identity only while it is exactly the one the host
// verified: the same file unchanged passes without being read again; a
// rewrite (even of the same size with its mtime put back), a file renamed
// into its place, or no identity at all is hashed, and refused when the
// content is not what the host hashed.
func TestVerifyByIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin")
	good := []byte("#!/bin/sh\necho good\n")
	if err := os.WriteFile(path, good, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(good)
	open := func() int {
		t.Helper()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	idOf := func(fd int) FileID {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return IdentityOf(&st)
	}
	fd := open()
	id := idOf(fd)
	if err := verify(fd, sum[:], &id); err != nil {
		t.Fatalf("unchanged file with its identity: %v", err)
	}
	if err := verify(fd, sum[:], nil); err != nil {
		t.Fatalf("unchanged file hashed: %v", err)
	}
	// The identity is what is trusted: with it, the content is not read
	// (a wrong digest is not noticed), which is why the host passes only
	// identities it found its trusted hash under.
	wrong := sha256.Sum256([]byte("other"))
	if err := verify(fd, wrong[:], &id); err != nil {
		t.Fatalf("identity match must not hash: %v", err)
	}
	if err := verify(fd, wrong[:], nil); err == nil || !strings.Contains(err.Error(), "checksums did not match") {
		t.Fatalf("no identity, wrong digest: %v", err)
	}

	// Rewritten in place, same size, mtime restored: ctime moved.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the filesystem's timestamp granularity
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	fd2 := open()
	if idOf(fd2) == id {
		t.Skip("the filesystem did not move ctime on a rewrite 10 ms later; cannot test here")
	}
	if err := verify(fd2, sum[:], &id); err == nil || !strings.Contains(err.Error(), "checksums did not match") {
		t.Fatalf("rewritten file with the old identity: %v", err)
	}

	// Another file renamed into the path: another inode.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho swapped\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	fd3 := open()
	if err := verify(fd3, sum[:], &id); err == nil || !strings.Contains(err.Error(), "checksums did not match") {
		t.Fatalf("renamed-in file with the old identity: %v", err)
	}
}

// BenchmarkVerify is the box's check of the binary it executes, here the
// test binary: by identity (the host found the trusted hash under it) and
// hashing the whole file (no identity, or a changed one).
func BenchmarkVerify(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	b.Logf("%s: %.1f MiB", exe, float64(len(raw))/(1<<20))
	fd, err := unix.Open(exe, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		b.Fatal(err)
	}
	id := IdentityOf(&st)
	for _, c := range []struct {
		name string
		id   *FileID
	}{{"identity", &id}, {"hash", nil}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				// A fresh descriptor each time, as each launch opens one:
				// hashing reads it to the end.
				f, err := unix.Open(exe, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				err = verify(f, sum[:], c.id)
				unix.Close(f)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
