package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAbuse_R5_OneDaemonPerHome: with a sandbox running, a second
// `nemoclave daemon` is refused by the lock, and a CLI whose ping is slow
// (the daemon is stopped with SIGSTOP for a while) waits for the lock
// holder instead of starting a second daemon; the sandbox is never
// marked lost.
func TestAbuse_R5_OneDaemonPerHome(t *testing.T) {
	e := newEnv(t, "E2E_PROVIDER_KEY="+providerKey)
	dir := filepath.Join(t.TempDir(), "keepalive")
	copyDir(t, filepath.Join(repoRoot(t), "e2e", "testdata", "keepalive"), dir)
	cassette := filepath.Join(repoRoot(t), "examples", "quickstart", "cassette.json")
	e.must("run", "-d", filepath.Join(dir, "blueprint.hcl"), "--var", "cassette="+cassette)
	var ping struct{ Pid int }
	if err := json.Unmarshal([]byte(e.must("daemon", "status", "-o", "json")), &ping); err != nil || ping.Pid == 0 {
		t.Fatalf("daemon status: %v", err)
	}

	second := e.run(context.Background(), "daemon")
	if second.code == 0 || !strings.Contains(second.stderr, "another nemoclave daemon holds the lock") {
		t.Fatalf("a second daemon: exit %d\n%s%s", second.code, second.stdout, second.stderr)
	}

	// A slow daemon: stopped for longer than the CLI's 2 s ping timeout.
	if err := syscall.Kill(ping.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan struct{})
	go func() {
		time.Sleep(5 * time.Second)
		_ = syscall.Kill(ping.Pid, syscall.SIGCONT)
		close(resumed)
	}()
	defer func() { <-resumed }()
	out := e.must("sandbox", "list", "-o", "json")
	<-resumed
	var list []struct{ Name, State string }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != "running" {
		t.Fatalf("after a slow ping: %+v\n%s", list, e.daemonLog())
	}
	var after struct{ Pid int }
	_ = json.Unmarshal([]byte(e.must("daemon", "status", "-o", "json")), &after)
	if after.Pid != ping.Pid {
		t.Fatalf("the CLI started daemon %d beside %d", after.Pid, ping.Pid)
	}
	e.must("sandbox", "delete", "e2e")
}
