package plugins

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// sockets lists the unix sockets under dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSocket != 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSocketsLiveInHomeAndGoAway: a plugin's socket and the host's broker
// sockets (a wired plugin serves host services over the broker) are in the
// manager's directory under $NEMOCLAVE_HOME/run/.sock; a crashed plugin's
// directory is removed when it is restarted, and Close removes the rest.
// A directory left by a dead process is removed by the next manager.
func TestSocketsLiveInHomeAndGoAway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A short home: t.TempDir() with this test's name would be too long
	// for socket paths, and the manager would fall back to the temp dir.
	home, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	m, _ := testManager(t, Options{Home: home, HealthInterval: 200 * time.Millisecond, RestartBackoff: 50 * time.Millisecond})
	base := filepath.Join(m.opts.Home, "run", ".sock")
	// A directory of a process that no longer exists (pid_max is below
	// 2^22), with a socket file in it, as a SIGKILLed daemon leaves.
	stale := filepath.Join(base, "4194305.1")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	tspec := helperSpec("serve")
	tspec.Name = "target"
	target, err := m.Start(ctx, tspec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale socket directory of a dead process was kept: %v", err)
	}
	cspec := helperSpec("serve")
	cspec.Name, cspec.Wires = "consumer", []Wire{{Attribute: "embeddings", Target: target}}
	consumer, err := m.Start(ctx, cspec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedOne(ctx, consumer.Embeddings(), "via-wire", "wired"); err != nil {
		t.Fatal(err)
	}
	before := sockets(t, base)
	// Two plugin sockets and at least one host broker socket.
	if len(before) < 3 {
		t.Fatalf("sockets under %s: %v; want the plugins' and the host's", base, before)
	}
	// SIGKILL the target: no chance to remove its own socket.
	pid := target.Pid()
	if pid <= 0 {
		t.Fatalf("target pid %d", pid)
	}
	launchDirs := map[string]bool{}
	for _, p := range before {
		launchDirs[filepath.Dir(p)] = true
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for target.Restarts() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the killed plugin was not restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := target.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	after := sockets(t, base)
	gone := 0
	for d := range launchDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			gone++
		}
	}
	if gone == 0 {
		t.Errorf("the crashed plugin's socket directory was not removed: before %v, after %v", before, after)
	}
	if slices.Equal(before, after) {
		t.Errorf("sockets unchanged across a crash and restart: %v", after)
	}
	m.Close()
	if left := sockets(t, base); len(left) > 0 {
		t.Fatalf("sockets left after Close: %v", left)
	}
	if ents, _ := os.ReadDir(base); len(ents) > 0 {
		t.Fatalf("socket directories left after Close: %v", ents)
	}
}

// closeHost runs the test binary as a host (helperCloseHost) with env and
// a temp dir of its own, so that nothing else writes there, and returns
// the sockets it saw under that dir while its plugin ran and after Close,
// and the entries left at the top of the dir.
func closeHost(t *testing.T, tmp string, env ...string) (during, after, entries string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(exe)
	host.Env = append([]string{helperEnv + "=close-host", "TMPDIR=" + tmp, binDirEnv + "=" + helperBinDir(t), "PATH=" + os.Getenv("PATH")}, env...)
	out, err := host.CombinedOutput()
	if err != nil {
		t.Fatalf("host: %v\n%s", err, out)
	}
	var sawAfter bool
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "during="); ok {
			during = v
		}
		if v, ok := strings.CutPrefix(l, "after="); ok {
			after, sawAfter = v, true
		}
		if v, ok := strings.CutPrefix(l, "entries="); ok {
			entries = v
		}
	}
	if during == "" || !sawAfter {
		t.Fatalf("the host saw no socket in its temp dir while its plugin ran (a test that checks nothing):\n%s", out)
	}
	return during, after, entries
}

// TestReattachLeavesNoSocket: go-plugin makes a reattached client's broker
// socket in the host's temp dir (it ignores UnixSocketConfig there);
// stopping the plugin removes it, and leaves the debug plugin running (it
// belongs to the developer's debugger).
func TestReattachLeavesNoSocket(t *testing.T) {
	t.Parallel()
	line, debug := startDebugPlugin(t)
	tmp := t.TempDir()
	during, after, _ := closeHost(t, tmp, plugin.ReattachEnv+"="+line, "NEMOCLAVE_TEST_HOME="+t.TempDir())
	if after != "" {
		t.Errorf("sockets left in the host's temp dir after Close: %s (during: %s)", after, during)
	}
	if left := sockets(t, tmp); len(left) > 0 {
		t.Errorf("sockets left after the host exited: %v", left)
	}
	if processGone(debug.Process.Pid) {
		t.Error("stopping a reattached plugin ended the debug process; it belongs to the debugger")
	}
}

// TestSocketFallbackLeavesNothing: a home too long for socket paths puts
// the sockets in the temp dir's nemoclave-plugins-<uid>; after Close
// neither they, nor the directory of a daemon that died meanwhile, nor
// nemoclave-plugins-<uid> itself are left.
func TestSocketFallbackLeavesNothing(t *testing.T) {
	t.Parallel()
	// A short temp dir (the fallback's socket paths must fit) and a home
	// longer than any socket path.
	tmp, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	home := filepath.Join(t.TempDir(), strings.Repeat("h", 80))
	during, after, entries := closeHost(t, tmp, "NEMOCLAVE_TEST_HOME="+home, "NEMOCLAVE_TEST_STALE=1")
	if !strings.Contains(during, "/nemoclave-plugins-") {
		t.Fatalf("sockets of a long home were not in the temp dir's nemoclave-plugins-<uid>: %s", during)
	}
	if after != "" || entries != "" {
		t.Errorf("left in the temp dir after Close: sockets %q, entries %q", after, entries)
	}
}
