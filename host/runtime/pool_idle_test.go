package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sandbox"
)

// idleRuntime is upRuntime with an idle TTL for plugin processes.
func idleRuntime(t *testing.T, ttl time.Duration) (*Runtime, context.Context) {
	return idleRuntimeIn(t, ttl, pluginDir)
}

// idleRuntimeIn is idleRuntime finding the builtin plugins in bin.
func idleRuntimeIn(t *testing.T, ttl time.Duration, bin string) (*Runtime, context.Context) {
	t.Helper()
	d := newFakeDriver(0)
	d.stayUp = true
	r, err := New(context.Background(), Options{
		Home: t.TempDir(), Drivers: map[string]sandbox.Driver{"local": d}, Executable: "/bin/true", PluginBinDir: bin,
		PluginIdleTTL: ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return r, ctx
}

// runOnce runs src detached as sandbox "box", returns the pid of each of
// its plugins by address, and deletes the sandbox (its run ends).
func runOnce(ctx context.Context, t *testing.T, r *Runtime, src string) map[string]int {
	t.Helper()
	runDetached(ctx, t, r, src)
	r.mu.Lock()
	rn := r.runs["box"]
	r.mu.Unlock()
	if rn == nil {
		t.Fatal("the run of sandbox box is not recorded")
	}
	pids := map[string]int{}
	for addr, s := range rn.plugins {
		if pids[addr] = s.Pid(); pids[addr] <= 0 {
			t.Fatalf("plugin %s has no process", addr)
		}
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
	return pids
}

// gone waits (up to a minute) until pid no longer runs.
func gone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still runs (kill 0: %v)", pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// With an idle TTL, the process of a run that ended is kept, and the next
// run of the same launch takes it over instead of launching one; a run
// with another configuration gets its own; Close stops the idle ones.
func TestIdlePluginProcessIsReused(t *testing.T) {
	t.Parallel()
	r, ctx := idleRuntime(t, time.Hour)
	src := withModel(oneAgent)
	first := runOnce(ctx, t, r, src)["plugin.llm.replay"]
	if n, idle := r.pool.running(), r.pool.idleCount(); n != 1 || idle != 1 {
		t.Fatalf("after the run: %d plugin processes, %d idle; want 1 kept idle", n, idle)
	}
	if !alive(first) {
		t.Fatalf("the idle plugin process %d is not running", first)
	}
	if again := runOnce(ctx, t, r, src)["plugin.llm.replay"]; again != first {
		t.Fatalf("the second run launched plugin process %d; want the idle %d reused", again, first)
	}
	// Another configuration is another launch; the idle one stays for
	// its own key.
	other := strings.Replace(src, `mode     = "replay"`, `mode     = "replay"
    upstream_model = "other"`, 1)
	if pid := runOnce(ctx, t, r, other)["plugin.llm.replay"]; pid == first {
		t.Fatalf("a run with another plugin configuration got the idle process %d", pid)
	}
	if n, idle := r.pool.running(), r.pool.idleCount(); n != 2 || idle != 2 {
		t.Fatalf("two configurations run and ended: %d plugin processes, %d idle; want 2 and 2", n, idle)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.pool.running(); n != 0 {
		t.Fatalf("after Close the pool holds %d processes", n)
	}
	gone(t, first)
}

// An idle process no run takes over within the TTL is stopped.
func TestIdlePluginProcessExpires(t *testing.T) {
	t.Parallel()
	r, ctx := idleRuntime(t, 50*time.Millisecond)
	pid := runOnce(ctx, t, r, withModel(oneAgent))["plugin.llm.replay"]
	gone(t, pid)
	deadline := time.Now().Add(time.Minute)
	for r.pool.running() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool still holds %d processes after the TTL", r.pool.running())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TTL 0 (the default of Options) keeps nothing: the process stops with
// its last run.
func TestNoIdleTTLStopsWithTheRun(t *testing.T) {
	t.Parallel()
	r, ctx := idleRuntime(t, 0)
	pid := runOnce(ctx, t, r, withModel(oneAgent))["plugin.llm.replay"]
	if n := r.pool.running(); n != 0 {
		t.Fatalf("TTL 0: %d plugin processes after the run", n)
	}
	gone(t, pid)
}

// An idle process is not reused when its binary was replaced on disk,
// when it crashed, or when a path it was given is another file now (a
// workspace made again, a cassette edited in place).
func TestIdlePluginProcessNotReusedWhenChanged(t *testing.T) {
	t.Parallel()
	// The builtins of this runtime are copies, so one can be replaced.
	dir := t.TempDir()
	bin := filepath.Join(dir, "nemoclave-plugin-llm-replay")
	orig, err := os.ReadFile(filepath.Join(pluginDir, "nemoclave-plugin-llm-replay"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadFile(filepath.Join(pluginDir, "nemoclave-plugin-tools-files"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nemoclave-plugin-tools-files"), files, 0o755); err != nil {
		t.Fatal(err)
	}
	r, ctx := idleRuntimeIn(t, time.Hour, dir)
	tape := filepath.Join(dir, "cassette.json")
	b, err := os.ReadFile(cassette)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tape, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = %q
    mode     = "replay"
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
  config {
    root = %q
  }
}

inference {
  default = "m"
  model "m" {
    provider = plugin.llm.replay
    model    = "replayed"
  }
}
`, tape, ws) + strings.Replace(oneAgent, `command = ["my-agent"]`, `command = ["my-agent"]
  tools   = [plugin.tools.files]`, 1)

	first := runOnce(ctx, t, r, src)
	if again := runOnce(ctx, t, r, src); again["plugin.llm.replay"] != first["plugin.llm.replay"] || again["plugin.tools.files"] != first["plugin.tools.files"] {
		t.Fatalf("unchanged: the second run's plugins %v; want the idle %v reused", again, first)
	}

	// The binary replaced (a rebuild: another file renamed into place).
	next := bin + ".new"
	if err := os.WriteFile(next, append(orig, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	second := runOnce(ctx, t, r, src)
	if second["plugin.llm.replay"] == first["plugin.llm.replay"] {
		t.Fatalf("the plugin binary was replaced, yet the idle process %d served the run", first["plugin.llm.replay"])
	}
	if second["plugin.tools.files"] != first["plugin.tools.files"] {
		t.Fatalf("tools-files did not change, yet was launched again (%d, was %d)", second["plugin.tools.files"], first["plugin.tools.files"])
	}
	gone(t, first["plugin.llm.replay"])

	// The workspace removed and made again: another directory.
	if err := os.RemoveAll(ws); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	third := runOnce(ctx, t, r, src)
	if third["plugin.tools.files"] == second["plugin.tools.files"] {
		t.Fatalf("the workspace was made again, yet the idle tools-files process %d (bound to the old one) served the run", second["plugin.tools.files"])
	}
	gone(t, second["plugin.tools.files"])

	// The cassette edited in place (same inode, more bytes).
	f, err := os.OpenFile(tape, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fourth := runOnce(ctx, t, r, src)
	if fourth["plugin.llm.replay"] == third["plugin.llm.replay"] {
		t.Fatalf("the cassette was edited, yet the idle process %d that read the old one served the run", third["plugin.llm.replay"])
	}

	// The idle process killed (a crash while no run held it).
	if err := syscall.Kill(fourth["plugin.tools.files"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone(t, fourth["plugin.tools.files"])
	fifth := runOnce(ctx, t, r, src)
	if fifth["plugin.tools.files"] == fourth["plugin.tools.files"] {
		t.Fatal("a run was given the killed tools-files process")
	}
	if fifth["plugin.llm.replay"] != fourth["plugin.llm.replay"] {
		t.Fatalf("llm-replay did not change, yet was launched again (%d, was %d)", fifth["plugin.llm.replay"], fourth["plugin.llm.replay"])
	}
	if n, idle := r.pool.running(), r.pool.idleCount(); n != 2 || idle != 2 {
		t.Fatalf("after the runs: %d plugin processes, %d idle; want only the last two kept", n, idle)
	}
}
