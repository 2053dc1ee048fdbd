package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// logBlueprint is a run of sandbox sb whose tools plugin "main" logs
// with label.
func logBlueprint(sb, label string) string {
	return withModel(fmt.Sprintf(`
plugin "tools" "main" {
  source = "builtin/tools-logtest"
  config {
    label = %q
  }
}

policy "p" {
  unknown_hosts = "deny"
}

sandbox %q {
  policy = policy.p
}

agent "a" {
  sandbox = sandbox.%s
  command = ["my-agent"]
  tools   = [plugin.tools.main]
}
`, label, sb, sb))
}

func pluginLogOf(t *testing.T, r *Runtime, req daemon.LogsRequest) string {
	t.Helper()
	req.Source = "plugin"
	var out bytes.Buffer
	if err := r.Logs(context.Background(), req, &out); err != nil {
		t.Fatalf("logs %s --source plugin: %v", req.Sandbox, err)
	}
	return out.String()
}

// waitPluginLog waits until sb's plugin log holds every one of want: a
// plugin's stderr reaches the host over go-plugin's stdio stream, after
// the call that wrote it may have returned.
func waitPluginLog(ctx context.Context, t *testing.T, r *Runtime, sb string, want ...string) string {
	t.Helper()
	for {
		got, missing := pluginLogOf(t, r, daemon.LogsRequest{Sandbox: sb}), ""
		for _, w := range want {
			if !strings.Contains(got, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return got
		}
		if ctx.Err() != nil {
			t.Fatalf("%s's plugin log never showed %q:\n%s", sb, missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func callTool(ctx context.Context, t *testing.T, r *Runtime, sb, tool string) error {
	t.Helper()
	r.mu.Lock()
	rn := r.runs[sb]
	r.mu.Unlock()
	if rn == nil {
		t.Fatalf("no run of %s", sb)
	}
	tp, err := rn.plugins.tools("main")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tp.CallTool(ctx, &tools.CallRequest{Name: tool, Context: tools.CallContext{Sandbox: sb, Agent: "a", Session: "s"}})
	return err
}

// Each sandbox has its own plugin log: two blueprints each with a plugin
// block named "main" (configured apart, so two processes) never see each
// other's lines; a process shared by two runs writes a line tagged with
// a caller's sandbox to that sandbox alone and its other lines (its
// start, a crash's panic and stack trace, as text) to both.
func TestPluginLogsPerSandbox(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	for _, run := range []struct{ sb, label string }{{"alpha", "A"}, {"beta", "B"}, {"gamma", "A"}} {
		if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, logBlueprint(run.sb, run.label)), Detach: true}, &events{}); err != nil {
			t.Fatalf("run %s: %v", run.sb, err)
		}
	}
	// alpha and gamma share main (and replay), beta has its own main.
	if n := r.pool.running(); n != 3 {
		t.Fatalf("%d plugin processes, want 3 (replay, main with label A, main with label B)", n)
	}
	for _, sb := range []string{"alpha", "beta", "gamma"} {
		if err := callTool(ctx, t, r, sb, "log"); err != nil {
			t.Fatalf("log call from %s: %v", sb, err)
		}
	}
	waitPluginLog(ctx, t, r, "alpha", "configured label=A", "call on stderr label=A sandbox=alpha")
	beta := waitPluginLog(ctx, t, r, "beta", "configured label=B", "call on stderr label=B sandbox=beta")
	gamma := waitPluginLog(ctx, t, r, "gamma", "call on stderr label=A sandbox=gamma")
	alpha := pluginLogOf(t, r, daemon.LogsRequest{Sandbox: "alpha"}) // gamma's line was routed by now too
	for _, c := range []struct {
		sb, log     string
		want, never []string
	}{
		{"alpha", alpha, []string{"run of ", "plugin.tools.main", "configured", "call on stderr label=A sandbox=alpha", "call through the host label=A sandbox=alpha"},
			[]string{"label=B", "sandbox=gamma", "sandbox=beta"}},
		{"beta", beta, []string{"configured label=B", "call on stderr label=B sandbox=beta", "call through the host label=B sandbox=beta"},
			[]string{"label=A", "sandbox=alpha", "sandbox=gamma"}},
		{"gamma", gamma, []string{"call on stderr label=A sandbox=gamma", "call through the host label=A sandbox=gamma"},
			[]string{"label=B", "sandbox=alpha", "sandbox=beta"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.log, w) {
				t.Errorf("%s's plugin log lacks %q:\n%s", c.sb, w, c.log)
			}
		}
		for _, n := range c.never {
			if strings.Contains(c.log, n) {
				t.Errorf("%s's plugin log shows %q, another sandbox's:\n%s", c.sb, n, c.log)
			}
		}
		if strings.Contains(c.log, `"@module"`) {
			t.Errorf("%s's plugin log holds raw JSON:\n%s", c.sb, c.log)
		}
	}
	if _, err := os.Stat(filepath.Join(r.opts.Home, "logs", "alpha", "plugins.log")); err != nil {
		t.Fatalf("no per-sandbox file: %v", err)
	}

	// A crash of the shared process reaches both its sandboxes, as text.
	r.mu.Lock()
	main := r.runs["alpha"].plugins["plugin.tools.main"]
	r.mu.Unlock()
	if err := callTool(ctx, t, r, "alpha", "crash"); err == nil {
		t.Fatal("the crash call succeeded")
	}
	for main.Restarts() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the crashed plugin was never restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, sb := range []string{"alpha", "gamma"} {
		got := pluginLogOf(t, r, daemon.LogsRequest{Sandbox: sb})
		for _, w := range []string{"plugin.tools.main: the crashed plugin's last output", "  stderr:\n    panic: logplugin crashes for A\n", "\n    goroutine "} {
			if !strings.Contains(got, w) {
				t.Errorf("%s's plugin log lacks %q:\n%s", sb, w, got)
			}
		}
	}
	if got := pluginLogOf(t, r, daemon.LogsRequest{Sandbox: "beta"}); strings.Contains(got, "panic") {
		t.Errorf("beta's plugin log shows another process's crash:\n%s", got)
	}
	if got := pluginLogOf(t, r, daemon.LogsRequest{Sandbox: "alpha", Tail: 2}); strings.Count(got, "\n") != 2 {
		t.Errorf("--tail 2 printed %d lines:\n%s", strings.Count(got, "\n"), got)
	}

	// Deleting gamma stops its share of the lines; alpha's calls still log.
	if _, err := r.DeleteSandbox(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.opts.Home, "logs", "gamma", "plugins.log")); !os.IsNotExist(err) {
		t.Errorf("sandbox delete left gamma's plugin log: %v", err)
	}
	if err := callTool(ctx, t, r, "alpha", "log"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.opts.Home, "logs", "gamma", "plugins.log")); !os.IsNotExist(err) {
		t.Errorf("a deleted sandbox's plugin log came back: %v", err)
	}
	for _, sb := range []string{"alpha", "beta"} {
		if _, err := r.DeleteSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
}

// A builtin's per-call lines are tagged with the caller's sandbox
// (plugin.Logger): two sandboxes sharing one pooled tools-files process
// each see only their own calls' lines.
func TestBuiltinPluginLogsPerSandbox(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	root := t.TempDir()
	for _, sb := range []string{"alpha", "beta"} {
		bp := strings.Replace(logBlueprint(sb, "A"), `tools   = [plugin.tools.main]`, `tools   = [plugin.tools.main, plugin.tools.files]`, 1)
		bp += fmt.Sprintf(`
plugin "tools" "files" {
  source = "builtin/tools-files"
  config {
    root = %q
  }
}
`, root)
		if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, bp), Detach: true}, &events{}); err != nil {
			t.Fatalf("run %s: %v", sb, err)
		}
	}
	if n := r.pool.running(); n != 3 {
		t.Fatalf("%d plugin processes, want 3 (replay, main and files, each shared)", n)
	}
	for _, sb := range []string{"alpha", "beta"} {
		r.mu.Lock()
		rn := r.runs[sb]
		r.mu.Unlock()
		tp, err := rn.plugins.tools("files")
		if err != nil {
			t.Fatal(err)
		}
		res, err := tp.CallTool(ctx, &tools.CallRequest{Name: "read_file", Arguments: []byte(`{"path":"missing-for-` + sb + `"}`),
			Context: tools.CallContext{Sandbox: sb, Agent: "a", Session: "s"}})
		if err != nil || !res.IsError {
			t.Fatalf("read_file of a missing file from %s: %v, %+v", sb, err, res)
		}
	}
	for _, c := range []struct{ sb, other string }{{"alpha", "beta"}, {"beta", "alpha"}} {
		got := waitPluginLog(ctx, t, r, c.sb, "tools-files: tool call failed", "sandbox="+c.sb, "missing-for-"+c.sb)
		if strings.Contains(got, "sandbox="+c.other) || strings.Contains(got, "missing-for-"+c.other) {
			t.Errorf("%s's plugin log shows %s's call:\n%s", c.sb, c.other, got)
		}
	}
	for _, sb := range []string{"alpha", "beta"} {
		if _, err := r.DeleteSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
}

// An attached run forgets its sandbox when the agent exits; its plugin
// log stays for `logs --source plugin` until `sandbox delete`.
func TestPluginLogKeptAfterAttachedRun(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, newFakeDriver(0), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ev := &events{}
	if err := r.Run(ctx, daemon.RunRequest{Path: writeBlueprint(t, logBlueprint("delta", "D"))}, ev); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ev.String(), "exit delta 0") {
		t.Fatalf("the attached run did not end:\n%s", ev)
	}
	if _, err := r.GetSandbox(ctx, "delta"); err == nil {
		t.Fatal("the attached run left its sandbox record")
	}
	waitPluginLog(ctx, t, r, "delta", "plugin.tools.main", "configured label=D")
	if _, err := r.DeleteSandbox(ctx, "delta"); err != nil {
		t.Fatalf("sandbox delete of an ended attached run: %v", err)
	}
	var out bytes.Buffer
	if err := r.Logs(ctx, daemon.LogsRequest{Sandbox: "delta", Source: "plugin"}, &out); err == nil || !strings.Contains(err.Error(), `no sandbox named "delta"`) {
		t.Errorf("logs after delete: %v, want no sandbox named \"delta\"; printed:\n%s", err, out.String())
	}
	for _, bad := range []string{"../delta", "Delta"} {
		if err := r.Logs(ctx, daemon.LogsRequest{Sandbox: bad, Source: "plugin"}, &out); err == nil {
			t.Errorf("logs of %q: no error", bad)
		}
	}
}

// A full plugin log rotates to plugins.log.1; --tail reads from the ends
// of both files, in order; without --tail both are printed whole.
func TestPluginLogRotatesAndTails(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	files := &pluginLogFiles{dir: home, max: 64}
	r := &Runtime{pluginLog: files}
	var want []string
	for i := range 12 {
		line := fmt.Sprintf("line %02d of the plugin log\n", i) // 26 bytes: two per file
		want = append(want, line)
		if err := files.append("box", []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := os.ReadFile(files.path("box"))
	old, _ := os.ReadFile(files.path("box") + ".1")
	if len(cur) > 64 || len(old) > 64 || string(cur) != strings.Join(want[10:], "") || string(old) != strings.Join(want[8:10], "") {
		t.Fatalf("rotation kept %q and %q", old, cur)
	}
	for _, c := range []struct{ tail, from int }{{1, 11}, {2, 10}, {3, 9}, {4, 8}, {9, 8}, {0, 8}} {
		var out bytes.Buffer
		if err := r.pluginLogs(context.Background(), daemon.LogsRequest{Sandbox: "box", Tail: c.tail}, &out); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != strings.Join(want[c.from:], "") {
			t.Errorf("tail %d: got\n%s\nwant\n%s", c.tail, got, strings.Join(want[c.from:], ""))
		}
	}
}

// The plugin manager's own log, logs/plugins.log, is capped and rotated
// like the sandboxes' plugin logs: the runtime's plugin manager logger
// writes through it.
func TestManagerPluginLogRotates(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, newFakeDriver(0), nil)
	r.pluginLog.mu.Lock()
	r.pluginLog.max = 4096
	r.pluginLog.mu.Unlock()
	for i := range 200 {
		r.pluginOpts.Logger.Info("manager line", "n", i)
	}
	path := filepath.Join(r.opts.Home, "logs", "plugins.log")
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatalf("plugins.log was never rotated: %v", err)
	}
	if len(cur) > 4096 || len(old) > 4096 {
		t.Errorf("past the cap: plugins.log %d bytes, plugins.log.1 %d bytes", len(cur), len(old))
	}
	lines := strings.Split(strings.TrimSuffix(string(cur), "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"n":199`) || !strings.HasPrefix(lines[0], "{") {
		t.Errorf("plugins.log does not hold whole lines up to the last: first %q, last %q", lines[0], last)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("plugins.log mode: %v %v", st.Mode(), err)
	}
}

func TestTailOffset(t *testing.T) {
	t.Parallel()
	// A file longer than one backwards read, with an unfinished last line.
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "%04d %s\n", i, strings.Repeat("x", i%40))
	}
	b.WriteString("unfinished")
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all := strings.SplitAfter(b.String(), "\n")
	for _, n := range []int{1, 2, 1000, 4999, 5001} {
		start, lines, err := tailOffset(f, n)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(all[len(all)-n:], ""); b.String()[start:] != want || lines != n {
			t.Errorf("tail %d: starts at %d with %d lines, want %d bytes", n, start, lines, len(want))
		}
	}
	if start, lines, _ := tailOffset(f, 6000); start != 0 || lines != 5001 {
		t.Errorf("tail past the start: %d, %d lines", start, lines)
	}
}

// A plugin block's timeout bounds each call to it: a call past it fails
// with an error naming the plugin, the call and the setting, and the
// caller is not held for longer. The timeout bounds every call to the
// plugin, those of the run's start and the call after the hung one too, so
// it is generous for a loaded machine (700ms failed so); the hung call
// waits it out.
func TestPluginBlockTimeoutBoundsCalls(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	bp := strings.Replace(logBlueprint("slow", "S"), `source = "builtin/tools-logtest"`, `source  = "builtin/tools-logtest"
  timeout = "10s"`, 1)
	runDetached(ctx, t, r, bp)
	err := callTool(ctx, t, r, "slow", "hang")
	for _, w := range []string{"plugin tools.main did not answer", "CallTool", "within 10s", `timeout = "..."`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("a hung call: %v; want it to say %q", err, w)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the call was bounded only by the test's own context")
	}
	if err := callTool(ctx, t, r, "slow", "log"); err != nil {
		t.Errorf("the next call: %v", err)
	}
	if _, err := r.DeleteSandbox(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
}
