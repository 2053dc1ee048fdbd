package wsfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// These tests run against a real directory with real symlinks, FIFOs and
// sparse files; the same attacks from inside a real sandbox are the
// TestEscape_T* rows in sandbox/local.

func setup(t *testing.T) (d *Dir, ws, outside string) {
	t.Helper()
	base := t.TempDir()
	ws = filepath.Join(base, "ws")
	outside = filepath.Join(base, "secret.txt")
	if err := os.MkdirAll(filepath.Join(ws, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "docs/a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	return New(ws, Options{Protected: []string{".git", "/workspace/.bashrc"}}), ws, outside
}

func TestRel(t *testing.T) {
	d := New("/srv/ws", Options{})
	for in, want := range map[string]string{"": ".", "a/b": "a/b", "./a/../b": "b", "/workspace/x": "x", "/workspace": ".", "/srv/ws/y": "y"} {
		if got, err := d.Rel(in); err != nil || got != want {
			t.Errorf("Rel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../x", "/etc/passwd", "/workspacex/y", "a/../../b"} {
		if _, err := d.Rel(in); err == nil {
			t.Errorf("Rel(%q) accepted", in)
		}
	}
}

func TestSymlinksOut(t *testing.T) {
	d, ws, outside := setup(t)
	ctx := context.Background()
	for name, target := range map[string]string{"abs": outside, "rel": "../secret.txt", "dir": filepath.Dir(outside)} {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("docs", filepath.Join(ws, "inner")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"abs", "rel", "dir/secret.txt", "/workspace/abs"} {
		if b, err := d.ReadFile(ctx, p, 1<<20); err == nil {
			t.Errorf("read %s through an outward symlink: %q", p, b)
		} else if !strings.Contains(err.Error(), "outside the workspace") {
			t.Errorf("read %s: unclear error %v", p, err)
		}
		if _, err := d.WriteFile(ctx, p, []byte("pwned"), WriteOptions{}); err == nil {
			t.Errorf("wrote %s through an outward symlink", p)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "host secret" {
		t.Fatalf("host file changed: %q", b)
	}
	// A link inside the workspace reads fine, but is never written through.
	if b, err := d.ReadFile(ctx, "inner/a.txt", 1<<20); err != nil || string(b) != "hello" {
		t.Errorf("inner link: %q, %v", b, err)
	}
	if _, err := d.WriteFile(ctx, "inner/new.txt", []byte("x"), WriteOptions{}); err == nil {
		t.Errorf("wrote through a symlinked directory")
	}
}

func TestProtectedAndReadOnly(t *testing.T) {
	d, ws, _ := setup(t)
	ctx := context.Background()
	for _, p := range []string{".git/config", ".git/hooks/pre-commit", "./.git/x/../config", "/workspace/.git/commondir", ".bashrc", "docs/../.git"} {
		_, err := d.WriteFile(ctx, p, []byte("[core]\n\tfsmonitor = touch /tmp/x\n"), WriteOptions{})
		if !errors.Is(err, ErrProtected) || !strings.Contains(err.Error(), "read-only file system") {
			t.Errorf("write %s: %v, want a read-only refusal", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, ".git")); err == nil {
		t.Errorf(".git was created by a refused write")
	}
	if rel, err := d.WriteFile(ctx, "/workspace/out/new.txt", []byte("ok"), WriteOptions{}); err != nil || rel != "out/new.txt" {
		t.Fatalf("ordinary write: %q, %v", rel, err)
	}
	if _, err := d.WriteFile(ctx, "out/new.txt", []byte("!"), WriteOptions{Append: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "out/new.txt")); string(b) != "ok!" {
		t.Errorf("append: %q", b)
	}
	ro := New(ws, Options{ReadOnly: true})
	if _, err := ro.WriteFile(ctx, "x.txt", nil, WriteOptions{}); !errors.Is(err, ErrProtected) {
		t.Errorf("read-only workspace written: %v", err)
	}
}

func TestNonRegularAndSize(t *testing.T) {
	d, ws, _ := setup(t)
	ctx := context.Background()
	if err := syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(ws, "zero")); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(ws, "sparse.bin")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := d.ReadFile(ctx, "fifo", 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo read: %v", err)
	}
	if _, err := d.WriteFile(ctx, "fifo", []byte("x"), WriteOptions{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo write: %v", err)
	}
	if _, err := d.ReadFile(ctx, "zero", 1<<20); err == nil {
		t.Errorf("/dev/zero read through a link")
	}
	if _, err := d.ReadFile(ctx, "sparse.bin", 50<<20); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10737418240 bytes") {
		t.Errorf("sparse: %v", err)
	}
	if _, err := d.ReadFile(ctx, "docs", 1<<20); err == nil {
		t.Errorf("directory read as a file")
	}
}

// Thousands of concurrent reads of a FIFO neither block nor keep a
// descriptor open.
func TestFIFOFlood(t *testing.T) {
	d, ws, _ := setup(t)
	if err := syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	for range 5000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.ReadFile(context.Background(), "fifo", 1<<20)
			mu.Lock()
			errs[fmt.Sprint(errors.Is(err, ErrNotRegular))]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if errs["true"] != 5000 {
		t.Fatalf("outcomes: %v", errs)
	}
	if after := openFDs(t); after > before {
		t.Errorf("descriptors leaked: %d before, %d after", before, after)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// The agent swaps a path between a regular file and an outward symlink as
// fast as it can; no read ever returns the host file and no write lands
// outside.
func TestSwapRace(t *testing.T) {
	d, ws, outside := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		link, file, tmp := filepath.Join(ws, "swap"), filepath.Join(ws, "swap.file"), filepath.Join(ws, "swap.link")
		for ctx.Err() == nil {
			_ = os.WriteFile(file, []byte("inside"), 0o644)
			_ = os.Rename(file, link)
			_ = os.Symlink(outside, tmp)
			_ = os.Rename(tmp, link)
			_ = os.Remove(filepath.Join(ws, "dir"))
			_ = os.Symlink(filepath.Dir(outside), filepath.Join(ws, "dir"))
			_ = os.Remove(filepath.Join(ws, "dir"))
			_ = os.Mkdir(filepath.Join(ws, "dir"), 0o755)
		}
	}()
	for i := 0; i < 3000; i++ {
		if b, err := d.ReadFile(context.Background(), "swap", 1<<20); err == nil && strings.Contains(string(b), "host") {
			t.Errorf("read %q through the swapped link", b)
		}
		_, _ = d.WriteFile(context.Background(), "swap", []byte("pwned"), WriteOptions{})
		_, _ = d.WriteFile(context.Background(), "dir/secret.txt", []byte("pwned"), WriteOptions{})
	}
	cancel()
	wg.Wait()
	if b, _ := os.ReadFile(outside); string(b) != "host secret" {
		t.Fatalf("host file changed: %q", b)
	}
}
