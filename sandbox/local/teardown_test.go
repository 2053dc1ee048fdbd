package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
)

// TestCgroupRemovedAfterExit: the sandbox's cgroups are removed after its
// exit is reported (off the path of Wait), and never leak: they disappear
// on their own once the sandbox has exited, and a Delete that follows Wait
// at once returns only when they are gone.
func TestCgroupRemovedAfterExit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creates real cgroups in the supervisor's hierarchy: needs root (the rootless path runs the same teardown code)")
	}
	testSetup(t)
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{StateRoot: filepath.Join(dir, "state"), Executable: os.Getenv("NEMOCLAVE_TEST_INIT")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gone := func(dirs []string) error {
		for _, c := range dirs {
			if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("cgroup %s still exists (stat: %v)", c, err)
			}
		}
		return nil
	}
	runOne := func(name string) []string {
		t.Helper()
		// The agent runs until the test has looked at its cgroups (a
		// /bin/true could exit first, and its cgroups go with it).
		release := "go-" + name
		wait := "while [ ! -e /workspace/" + release + " ]; do sleep 0.01; done"
		if _, err := d.Create(ctx, sandbox.Spec{Name: name, Command: []string{"/bin/sh", "-c", wait}, Workspace: ws, Policy: testPolicy()}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
		r, err := d.load(name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cgroup == nil || len(r.Cgroup.Dirs) == 0 {
			t.Fatal("a root supervisor's sandbox has no cgroup")
		}
		for _, c := range r.Cgroup.Dirs {
			if _, err := os.Stat(c); err != nil {
				t.Fatalf("the running sandbox's cgroup %s: %v", c, err)
			}
		}
		if err := os.WriteFile(filepath.Join(ws, release), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := d.Wait(ctx, name)
		if err != nil || info.State != sandbox.StateExited || info.ExitCode != 0 {
			t.Fatalf("wait: %+v, %v", info, err)
		}
		return r.Cgroup.Dirs
	}

	// Exited, not deleted: the cgroups go by themselves.
	dirs := runOne("cg-exit")
	deadline := time.Now().Add(60 * time.Second)
	for gone(dirs) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the sandbox exited: %v", gone(dirs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Delete(ctx, "cg-exit"); err != nil {
		t.Fatal(err)
	}

	// Deleted right after Wait: gone when Delete returns, no polling.
	for i := range 5 {
		name := fmt.Sprintf("cg-delete-%d", i)
		dirs := runOne(name)
		if err := d.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := gone(dirs); err != nil {
			t.Fatalf("after Delete returned: %v", err)
		}
	}
}
